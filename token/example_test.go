package token_test

import (
	"errors"
	"fmt"

	"github.com/gs-auth-token/gs-auth-token/token"
)

func ExampleGenerate() {
	tok, err := token.Generate()
	if err != nil {
		fmt.Println("generating a token failed:", err)
		return
	}
	fmt.Println(len(tok))
	// Output: 32
}

func ExampleSet_Check() {
	set := token.NewSet(token.Entry{Digest: token.Sum("k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i"), ID: "legacy"})

	entry, err := set.Check("k3J9xQ2mP7vR4tY8wZ1aB5cD6eF0gH2i")
	fmt.Println(entry.ID, err)

	_, err = set.Check("Fake")
	fmt.Println(err)
	fmt.Println(errors.Is(err, token.ErrMismatch))
	// Output:
	// legacy <nil>
	// authentication token mismatch: unknown token
	// true
}
