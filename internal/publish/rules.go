package publish

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sitehost/sitehost/internal/rules"
)

// parseRules reads the rules files of a built directory and parses them
// with the site's netlify.toml. A file that cannot be read is an error on
// the deploy, like a syntax error: the rest still apply.
func parseRules(dir string, toml []byte) rules.Set {
	var errs []rules.Error
	read := func(name string) []byte {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			defer f.Close()
			var data []byte
			// One byte more than allowed, so the parser sees it is too big.
			data, err = io.ReadAll(io.LimitReader(f, rules.MaxFileSize+1))
			if err == nil {
				return data
			}
		}
		errs = append(errs, rules.Error{File: name, Message: "reading: " + err.Error()})
		return nil
	}
	set := rules.Parse(read(rules.RedirectsFile), read(rules.HeadersFile), toml)
	set.Errors = append(errs, set.Errors...)
	return set
}
