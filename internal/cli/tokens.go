package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gs-auth-token/gs-auth-token/store"
)

// existingOnly opens a SQLite store only if its file exists, for commands
// that have nothing to do in a new, empty database.
var existingOnly = []store.Option{store.WithoutCreate()}

// parseDuration parses a duration that may be zero; besides Go's units it
// accepts a whole number of days, such as 30d.
func parseDuration(flag, s string) (time.Duration, error) {
	bad := &usageError{msg: fmt.Sprintf("invalid %s %q: use a duration such as 0, 90m, 24h or 30d", flag, s)}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 36500 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}

func describeExpiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func siteName(id string) string {
	if id == "" {
		return "the install-wide site"
	}
	return fmt.Sprintf("site %q", id)
}

func (a *app) createCommand() *cobra.Command {
	var name, site, expires string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a named token and print it once",
		Long: `create makes a new token for one client, stores only its SHA-256 digest,
and prints the token alone on standard output, so that scripts can capture
it. It cannot be shown again. Give each client script its own name, such as
mail-gateway or nightly-sync, so that the audit trail and 'list' tell them
apart.

Tokens look like gst_<id>_<secret><checksum>. The id is public and names
the token in logs; the checksum catches a mistyped token.

To replace GroupServer's plain-text token instead, for GroupServer's own
Python clients, use gs_auth_token_create.

Exit status: 0 created; 1 a usage error or an invalid name; 2 a token of
that name is already active, or the store failed.`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			expiresIn, err := parseDuration("--expires", expires)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), a.dsn(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, t, err := st.CreateToken(cmd.Context(), name, site, expiresIn)
			if err != nil {
				return tokenError(err)
			}
			fmt.Fprintf(a.stderr, "%s: created token %q (id %s) for %s, expiring %s; it is shown only this once\n",
				prog, t.Name, t.ID, siteName(t.SiteID), describeExpiry(t.Expires))
			fmt.Fprintln(a.stdout, tok)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "default", "name of the client that will use the token")
	f.StringVar(&site, "site", "", `id of the site the token is valid for; "" is every site`)
	f.StringVar(&expires, "expires", "0", "lifetime of the token, such as 90d; 0 is forever")
	return cmd
}

func (a *app) rotateCommand() *cobra.Command {
	var site, grace, expires string
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace a named token, keeping the old one valid for a grace period",
		Long: `rotate makes a new token with the same name and site, prints it alone on
standard output, and keeps the old token valid until the grace period ends,
so that clients can be updated one by one without downtime. A grace of 0
ends the old token at once, as after a leak. The new token keeps the old
one's lifetime unless --expires sets another.

Exit status: 0 rotated; 1 a usage error; 2 no active token of that name,
or the store failed.`,
		Args: exactlyOne("NAME"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			graceFor, err := parseDuration("--grace", grace)
			if err != nil {
				return err
			}
			expiresIn, err := parseDuration("--expires", expires)
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), a.dsn(), existingOnly)
			if err != nil {
				return err
			}
			defer st.Close()
			tok, t, old, err := st.RotateToken(cmd.Context(), args[0], site, graceFor, expiresIn)
			if err != nil {
				return tokenError(err)
			}
			fmt.Fprintf(a.stderr, "%s: rotated token %q on %s: the new token (id %s) is shown only this once; the old one (id %s) is valid until %s\n",
				prog, t.Name, siteName(t.SiteID), t.ID, old.ID, describeExpiry(old.Expires))
			fmt.Fprintln(a.stdout, tok)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&site, "site", "", `id of the token's site; "" is the install-wide site`)
	f.StringVar(&grace, "grace", "24h", "how long the old token stays valid, such as 24h; 0 ends it at once")
	f.StringVar(&expires, "expires", "0", "lifetime of the new token, such as 90d; 0 keeps the old token's lifetime")
	return cmd
}

func (a *app) revokeCommand() *cobra.Command {
	var site string
	cmd := &cobra.Command{
		Use:   "revoke NAME|ID",
		Short: "End a token at once",
		Long: `revoke ends a token at once. Given an id, it revokes that token; given a
name, it revokes every token of that name on the site, including an old
one still in a rotation's grace period. Running servers refuse it within
milliseconds on PostgreSQL, which notifies them, and within their cache's
staleness bound (5 s by default) on SQLite.

Exit status: 0 revoked; 1 a usage error; 2 no such token, or the store
failed.

'revoke legacy' deletes GroupServer's plain-text token from the option
table. GroupServer's own Python hooks read that token, so do it only when
'list' shows that no client has used it for a while.`,
		Args: exactlyOne("NAME|ID"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context(), a.dsn(), existingOnly)
			if err != nil {
				return err
			}
			defer st.Close()
			if args[0] == store.LegacyTokenID {
				return a.retireLegacy(cmd, st)
			}
			revoked, err := st.RevokeToken(cmd.Context(), args[0], site)
			if err != nil {
				return tokenError(err)
			}
			for _, t := range revoked {
				fmt.Fprintf(a.stdout, "revoked token %q (id %s) of %s\n", t.Name, t.ID, siteName(t.SiteID))
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&site, "site", "", `id of the token's site, when revoking by name; "" is the install-wide site`)
	return cmd
}

func (a *app) retireLegacy(cmd *cobra.Command, st *store.Store) error {
	_, lastUsed, err := st.LegacyTokenStatus(cmd.Context())
	if err != nil {
		return err
	}
	deleted, err := st.RetireLegacyToken(cmd.Context())
	if err != nil {
		return err
	}
	if !deleted {
		return &exitError{code: ExitFailed, err: fmt.Errorf("%w: there is no plain-text token to retire", store.ErrNotFound)}
	}
	last := "never, since gs-auth-token started counting"
	if !lastUsed.IsZero() {
		last = lastUsed.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(a.stdout, "retired GroupServer's plain-text token (last used: %s)\n", last)
	return nil
}

type tokenJSON struct {
	Name       string     `json:"name"`
	ID         string     `json:"id"`
	SiteID     string     `json:"site_id"`
	State      string     `json:"state"`
	Created    *time.Time `json:"created,omitempty"`
	Expires    *time.Time `json:"expires,omitempty"`
	Revoked    *time.Time `json:"revoked,omitempty"`
	LastUsed   *time.Time `json:"last_used,omitempty"`
	ReplacedBy string     `json:"replaced_by,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (a *app) listCommand() *cobra.Command {
	var site string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tokens with their dates and state, never their secrets",
		Long: `list shows every token: name, id, site, state (active, rotated, expired or
revoked), and when it was created, expires and was last used. Last use is
recorded at most once a minute per token and instance. GroupServer's
plain-text token, when present, is listed with the id "legacy".`,
		Args: noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd.Context(), a.dsn(), existingOnly)
			if err != nil {
				return err
			}
			defer st.Close()
			siteSet := cmd.Flags().Changed("site")
			tokens, err := st.ListTokens(cmd.Context(), site, !siteSet)
			if err != nil {
				return err
			}
			legacy, legacyUsed, err := st.LegacyTokenStatus(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]tokenJSON, 0, len(tokens)+1)
			if legacy {
				rows = append(rows, tokenJSON{Name: "(gs_auth_token_create)", ID: store.LegacyTokenID, State: "active, plain text", LastUsed: timePtr(legacyUsed)})
			}
			for _, t := range tokens {
				rows = append(rows, tokenJSON{Name: t.Name, ID: t.ID, SiteID: t.SiteID, State: t.State(now),
					Created: timePtr(t.Created), Expires: timePtr(t.Expires), Revoked: timePtr(t.Revoked),
					LastUsed: timePtr(t.LastUsed), ReplacedBy: t.ReplacedBy})
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				for _, r := range rows {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			if len(rows) == 0 {
				fmt.Fprintf(a.stderr, "%s: no tokens; make one with '%s create --name NAME'\n", prog, prog)
				return nil
			}
			return writeTokenTable(a, rows)
		}),
	}
	cmd.Flags().StringVar(&site, "site", "", `list only the tokens of this site ("" is the install-wide site); default all sites`)
	cmd.Flags().BoolVar(&asJSON, "json", false, "write JSON lines instead of a table")
	return cmd
}

func writeTokenTable(a *app, rows []tokenJSON) error {
	show := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Format("2006-01-02 15:04")
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSITE\tSTATE\tCREATED\tEXPIRES\tLAST USED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.ID, strconv.Quote(r.SiteID), r.State,
			show(r.Created), show(r.Expires), show(r.LastUsed))
	}
	return tw.Flush()
}

// tokenError gives token errors their exit status: a bad name is a usage
// error, and the rest are failures with the store's message.
func tokenError(err error) error {
	if errors.Is(err, store.ErrInvalidName) {
		return &usageError{msg: err.Error()}
	}
	return err
}

func exactlyOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return &usageError{msg: fmt.Sprintf("%s takes one argument, %s; got %d", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}
