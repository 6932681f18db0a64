package cli

import (
	"errors"

	"github.com/gs-auth-token/gs-auth-token/store"
)

func isUnavailable(err error) bool { return errors.Is(err, store.ErrUnavailable) }
