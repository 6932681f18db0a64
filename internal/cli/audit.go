package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gs-auth-token/gs-auth-token/audit"
	"github.com/gs-auth-token/gs-auth-token/store"
)

func (a *app) auditCommand() *cobra.Command {
	var since string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List recent authentication failures",
		Long: `audit lists the authentication failures recorded in the audit trail,
newest first: when, what, which site, which page and which client. With
--json it writes one JSON object per line instead of a table.`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			window, err := parseSince(since)
			if err != nil {
				return err
			}
			if limit <= 0 {
				return &usageError{msg: fmt.Sprintf("invalid --limit %d: must be a positive number", limit)}
			}
			ctx := cmd.Context()
			st, err := openStore(ctx, a.dsn(), existingOnly)
			if err != nil {
				return err
			}
			defer st.Close()
			from := time.Now().Add(-window)
			events, err := st.AuditEvents(ctx, store.AuditQuery{Subsystem: audit.Subsystem, Since: from, Limit: limit})
			if err != nil {
				return err
			}
			if asJSON {
				return writeEventsJSON(a, events)
			}
			if len(events) == 0 {
				fmt.Fprintf(a.stderr, "%s: no authentication failures since %s\n", prog, from.UTC().Format(time.RFC3339))
				return nil
			}
			return writeEventsTable(a, events)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "24h", "how far back to look, such as 90m, 24h or 7d")
	f.IntVar(&limit, "limit", 50, "maximum number of events to list")
	f.BoolVar(&asJSON, "json", false, "write JSON lines instead of a table")
	return cmd
}

// parseSince parses a positive duration; besides Go's units it accepts a
// whole number of days, such as 7d.
func parseSince(s string) (time.Duration, error) {
	bad := &usageError{msg: fmt.Sprintf("invalid --since %q: use a positive duration such as 90m, 24h or 7d", s)}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

type eventJSON struct {
	ID     string    `json:"id"`
	Date   time.Time `json:"date"`
	Code   string    `json:"code"`
	Event  string    `json:"event"`
	SiteID string    `json:"site_id"`
	Page   string    `json:"page"`
	Detail string    `json:"detail"`
}

func writeEventsJSON(a *app, events []audit.Event) error {
	enc := json.NewEncoder(a.stdout)
	for _, e := range events {
		if err := enc.Encode(eventJSON{ID: e.ID, Date: e.Date.UTC(), Code: e.Code, Event: audit.CodeName(e.Code),
			SiteID: e.SiteID, Page: e.InstanceDatum, Detail: e.SupplementaryDatum}); err != nil {
			return err
		}
	}
	return nil
}

func writeEventsTable(a *app, events []audit.Event) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE (UTC)\tEVENT\tSITE\tPAGE\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Date.UTC().Format("2006-01-02 15:04:05"), audit.CodeName(e.Code),
			strconv.Quote(e.SiteID), e.InstanceDatum, e.SupplementaryDatum)
	}
	return tw.Flush()
}
