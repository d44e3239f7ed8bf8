package cache

import "time"

var (
	shortDays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	longDays  = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
	months    = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
)

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7): the preferred
// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" and the two obsolete forms,
// RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" and asctime
// "Sun Nov  6 08:49:37 1994". now resolves the two-digit year of the RFC 850
// form: a date more than 50 years in the future of now is taken from the
// previous century. Names, "GMT" too, are matched without case, as RFC 9111
// §4.2 asks of a cache. Surrounding whitespace is ignored; anything else that
// does not match exactly is invalid. It does not allocate.
func ParseHTTPDate(b []byte, now time.Time) (time.Time, bool) {
	b = trimOWS(b)
	switch {
	case len(b) == 29 && b[3] == ',':
		return parseIMFFixdate(b)
	case len(b) == 24 && b[3] == ' ':
		return parseASCTime(b)
	default:
		return parseRFC850(b, now)
	}
}

// "Sun, 06 Nov 1994 08:49:37 GMT"
func parseIMFFixdate(b []byte) (time.Time, bool) {
	if !isDay(b[0:3], shortDays[:]) || b[4] != ' ' || b[7] != ' ' || b[11] != ' ' ||
		b[16] != ' ' || b[25] != ' ' || !equalFold(b[26:], "gmt") {
		return time.Time{}, false
	}
	day, ok1 := digits(b[5:7])
	mon, ok2 := month(b[8:11])
	year, ok3 := digits(b[12:16])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	return clock(year, mon, day, b[17:25])
}

// "Sun Nov  6 08:49:37 1994"
func parseASCTime(b []byte) (time.Time, bool) {
	if !isDay(b[0:3], shortDays[:]) || b[7] != ' ' || b[10] != ' ' || b[19] != ' ' {
		return time.Time{}, false
	}
	mon, ok1 := month(b[4:7])
	d := b[8:10]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok2 := digits(d)
	year, ok3 := digits(b[20:24])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	return clock(year, mon, day, b[11:19])
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
func parseRFC850(b []byte, now time.Time) (time.Time, bool) {
	comma := -1
	for i := 0; i < len(b) && i < 10; i++ {
		if b[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !isDay(b[:comma], longDays[:]) {
		return time.Time{}, false
	}
	r := b[comma+1:]
	// " 06-Nov-94 08:49:37 GMT"
	if len(r) != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' ||
		r[19] != ' ' || !equalFold(r[20:], "gmt") {
		return time.Time{}, false
	}
	day, ok1 := digits(r[1:3])
	mon, ok2 := month(r[4:7])
	yy, ok3 := digits(r[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	cur := now.UTC().Year()
	year := cur/100*100 + yy
	if year > cur+50 {
		year -= 100
	}
	return clock(year, mon, day, r[11:19])
}

// clock reads "08:49:37" and builds the time, refusing out-of-range fields
// (time.Date would silently normalise 31 Feb to 3 Mar).
func clock(year int, mon time.Month, day int, hms []byte) (time.Time, bool) {
	if hms[2] != ':' || hms[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(hms[0:2])
	m, ok2 := digits(hms[3:5])
	s, ok3 := digits(hms[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 || day < 1 {
		return time.Time{}, false
	}
	t := time.Date(year, mon, day, h, m, s, 0, time.UTC)
	if t.Day() != day && s != 60 {
		return time.Time{}, false
	}
	return t, true
}

func digits(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	return n, true
}

func month(b []byte) (time.Month, bool) {
	for i, m := range months {
		if equalFold(b, m) {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

func isDay(b []byte, names []string) bool {
	for _, n := range names {
		if equalFold(b, n) {
			return true
		}
	}
	return false
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
