package desired

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/slum-fleet/slum"
)

// maxFileName bounds the name a sent file goes by in messages.
const maxFileName = 1024

// Send packs a fleet file read by Load or LoadFile (its tokens resolved)
// for a fleet to apply.
func Send(f *File) (slum.FileSource, error) {
	if f.Text == nil {
		return slum.FileSource{}, fmt.Errorf("send fleet file %s: %w: it was not parsed from text", f.Name, slum.ErrInvalid)
	}
	sf := slum.FileSource{Name: f.Name}
	if f.parsed != nil && f.parsed.Name == f.Name && string(f.Text) == f.parsedText {
		sf.Text = f.parsedText
		sf.Parsed = &sentParse{name: f.Name, text: sf.Text, file: f.parsed}
	} else {
		sf.Text = string(f.Text)
	}
	for _, s := range f.Servers {
		if s.TokenEnv == "" && s.TokenFile == "" {
			continue
		}
		if s.Token == "" {
			return slum.FileSource{}, fmt.Errorf("send fleet file %s: %w: server %s's token was not read (load the file with Load)", f.Name, slum.ErrInvalid, s.ID)
		}
		if sf.Tokens == nil {
			sf.Tokens = map[string]string{}
		}
		sf.Tokens[s.ID] = s.Token
	}
	return sf, nil
}

// Receive parses and checks a sent fleet file as Load checks one read
// from disk, with the sent tokens in place of what its token_env and
// token_file entries name. Every token a server entry names must have
// been sent, and nothing else.
func Receive(sf slum.FileSource) (*File, error) {
	if sf.Name == "" || len(sf.Name) > maxFileName || strings.ContainsFunc(sf.Name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return nil, invalid("file name", sf.Name, fmt.Sprintf("must be printable text of 1 to %d bytes", maxFileName))
	}
	if len(sf.Text) > MaxFileSize {
		return nil, &slum.FieldError{Where: sf.Name, Reason: fmt.Sprintf("the file is larger than %d bytes", MaxFileSize)}
	}
	f := recallParse(sf)
	if f == nil {
		var err error
		if f, err = Parse(sf.Name, []byte(sf.Text)); err != nil {
			return nil, err
		}
	}
	if !f.versioned {
		return nil, &slum.FieldError{Where: sf.Name + ":1", Field: "version", NoValue: true,
			Reason: "is missing: a fleet file starts with version: 1"}
	}
	used := map[string]bool{}
	for i := range f.Servers {
		s := &f.Servers[i]
		line := s.tokenLine
		if line == 0 {
			line = s.Line
		}
		where := fmt.Sprintf("%s:%d", f.Name, line)
		at := fmt.Sprintf("servers[%d]", i)
		tok, sent := sf.Tokens[s.ID]
		named := s.TokenEnv != "" || s.TokenFile != ""
		switch {
		case named && !sent:
			return nil, &slum.FieldError{Where: where, Field: at + ".token", NoValue: true,
				Reason: "was not sent: the sender reads what token_env or token_file names and sends the token"}
		case !named && sent:
			return nil, &slum.FieldError{Where: where, Field: at + ".token", NoValue: true,
				Reason: "was sent for server " + s.ID + ", whose entry names no token_env or token_file"}
		case !named:
			continue
		}
		used[s.ID] = true
		if tok == "" {
			return nil, &slum.FieldError{Where: where, Field: at + ".token", NoValue: true, Reason: "was sent empty"}
		}
		if err := ValidateToken(tok); err != nil {
			return nil, &slum.FieldError{Where: where, Field: at + ".token", Value: "(hidden)", Reason: "must be printable ASCII without spaces"}
		}
		s.Token = tok
	}
	var extra []string
	for id := range sf.Tokens {
		if !used[id] {
			extra = append(extra, id)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, &slum.FieldError{Where: sf.Name, Field: "tokens", NoValue: true,
			Reason: "were sent for servers the file does not name: " + strings.Join(extra, ", ")}
	}
	return f, nil
}
