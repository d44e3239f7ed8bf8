package coarse

import (
	"testing"
	"time"
)

func TestADeadlineIsDueWhenEarlierNoneOrLaterByMoreThanTheSlack(t *testing.T) {
	base := time.Now()
	slack := time.Second
	for _, tc := range []struct {
		name      string
		want, set time.Time
		due       bool
	}{
		{"the first deadline", base, time.Time{}, true},
		{"none, and none in force", time.Time{}, time.Time{}, false},
		{"none while one is in force", time.Time{}, base, true},
		{"the same", base, base, false},
		{"later within the slack", base.Add(slack), base, false},
		{"later by more than the slack", base.Add(slack + 1), base, true},
		{"earlier by a nanosecond", base.Add(-1), base, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Due(tc.want, tc.set, slack); got != tc.due {
				t.Errorf("Due = %v, want %v", got, tc.due)
			}
		})
	}
}

func TestTheSlackIsASixteenthOfTheTimeout(t *testing.T) {
	if got := Slack(10 * time.Second); got != 625*time.Millisecond {
		t.Errorf("Slack(10s) = %v, want 625ms", got)
	}
}
