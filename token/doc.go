// Package token makes and checks the shared secrets that authenticate calls
// to web hooks.
//
// # Format
//
// A legacy token, as GroupServer makes it, is 32 characters over the base-62
// alphabet [Alphabet] (digits, then lower case, then upper case). Each
// character is drawn uniformly from a cryptographic random source, so a token
// carries about 190 bits. [Generate] makes one.
//
// # Checking
//
// A [Set] holds the SHA-256 digests of the tokens a site accepts. [Set.Check]
// hashes the supplied token and compares the digest with every stored digest
// using [crypto/subtle], without stopping at the first match, so the time it
// takes does not depend on which stored token matched, or on how much of the
// supplied token is right. An empty set accepts nothing, and neither does an
// empty or otherwise malformed supplied token: the check fails closed.
//
// # Errors
//
// A failed check returns a [*MismatchError], which matches [ErrMismatch]
// under [errors.Is]. Its message names the reason, never the token.
package token
