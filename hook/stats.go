package hook

import (
	"errors"
	"sync/atomic"

	"github.com/gs-auth-token/gs-auth-token/token"
)

// Outcome classifies the answer to a submission, for metrics.
type Outcome int

// Outcomes of a submission.
const (
	OutcomeOK          Outcome = iota // the action ran
	OutcomeMissing                    // no token
	OutcomeUnknown                    // a token that matches none
	OutcomeMalformed                  // a token that could never match
	OutcomeExpired                    // an expired token
	OutcomeRevoked                    // a revoked token
	OutcomeWrongSite                  // another site's token
	OutcomeThrottled                  // refused with 429, unchecked
	OutcomeUnavailable                // refused with 503, store unreachable
	OutcomeInvalid                    // a valid token with invalid fields
	OutcomeRejected                   // refused before the token check: 400, 405, 413, 415
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"ok", "missing", "unknown", "malformed", "expired", "revoked",
	"wrong_site", "throttled", "unavailable", "invalid", "rejected"}

// String returns the outcome's metric label, such as "revoked".
func (o Outcome) String() string {
	if o < 0 || o >= numOutcomes {
		return "unknown_outcome"
	}
	return outcomeNames[o]
}

// Stats counts the outcomes of submissions. Share one between the
// endpoints of a server with [WithStats]. It is safe for concurrent use.
type Stats struct {
	counts [numOutcomes]atomic.Int64
}

// WithStats counts every submission's outcome in s.
func WithStats(s *Stats) Option { return func(e *Endpoint) { e.stats = s } }

// Counts returns the count of each outcome, by label.
func (s *Stats) Counts() map[string]int64 {
	out := make(map[string]int64, numOutcomes)
	for i := range s.counts {
		out[Outcome(i).String()] = s.counts[i].Load()
	}
	return out
}

func (s *Stats) add(o Outcome) {
	if s != nil {
		s.counts[o].Add(1)
	}
}

// outcomeOf classifies a failed token check.
func outcomeOf(err error) Outcome {
	var me *token.MismatchError
	if !errors.As(err, &me) {
		return OutcomeUnavailable
	}
	switch me.Reason {
	case token.ReasonMissing:
		return OutcomeMissing
	case token.ReasonMalformed:
		return OutcomeMalformed
	case token.ReasonExpired:
		return OutcomeExpired
	case token.ReasonRevoked:
		return OutcomeRevoked
	case token.ReasonWrongSite:
		return OutcomeWrongSite
	}
	return OutcomeUnknown
}
