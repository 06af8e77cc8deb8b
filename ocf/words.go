package ocf

import (
	"errors"
	"strings"
)

// wordsFormat is how the meta-data and exit reasons describe a Words
// value.
const wordsFormat = `words separated by spaces, quoted as in sh: 'a b', "a b" or a\ b`

// Words declares a list of command-line words, such as a daemon's extra
// options, decoded into dst with SplitWords. Unlike List it does not
// split on commas, so "-o a,b" stays two words, and a word may hold
// spaces when quoted. It is a string in the meta-data.
func Words(dst *[]string, name, short string, opts ...Option) Param {
	return newParam(dst, name, "string", wordsFormat, short, func(v string) error {
		words, err := SplitWords(v)
		if err != nil {
			return err
		}
		*dst = words
		return nil
	}, opts)
}

// SplitWords splits s into words the way a POSIX shell splits a simple
// command line, without any expansion: no shell ever sees the words, so
// $, `, *, ~ and the like are ordinary characters. Words are separated by
// unquoted spaces, tabs and newlines. Inside single quotes every
// character is literal. Inside double quotes a backslash escapes only
// $, `, ", \ and a newline (a backslash-newline pair is removed); before
// any other character it stays. Outside quotes a backslash makes the
// next character literal, and a backslash-newline pair is removed.
// Quotes next to other characters join them into one word (a'b c'd is
// "ab cd"), and two quotes with nothing between them make an empty
// word.
//
// Return values:
//   - (words, nil): the words, nil when s holds none.
//   - (nil, err): a quote is not closed, s ends with a lone backslash,
//     or s holds a NUL byte (which no command-line word can carry); err
//     says which.
func SplitWords(s string) ([]string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errors.New("contains a NUL byte")
	}
	var (
		words  []string
		word   strings.Builder
		inWord bool // a word has started, possibly empty ('')
	)
	end := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n':
			end()
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New("ends with a backslash; write \\\\ for a literal one")
			}
			i++
			if s[i] != '\n' {
				word.WriteByte(s[i])
				inWord = true
			}
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("has an unterminated single quote")
			}
			word.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						word.WriteByte(s[i])
					}
					continue
				}
				word.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New("has an unterminated double quote")
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	end()
	return words, nil
}
