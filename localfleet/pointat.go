package localfleet

import (
	"bytes"
	"fmt"

	"github.com/slum-fleet/slum/desired"
)

// PointAt is the fleet file f with its i-th server pointed at the i-th
// local server: that server's URL, the domain it routes instances under
// and its token file. The file is written anew and read back, so what it
// says (its text, which a fleet applies) and what it holds agree.
func PointAt(f *desired.File, members []*Member) (*desired.File, error) {
	if len(members) != len(f.Servers) {
		return nil, fmt.Errorf("%d local servers for the %d servers of %s", len(members), len(f.Servers), f.Name)
	}
	for i := range f.Servers {
		s, m := &f.Servers[i], members[i]
		s.SetURL(m.URL)
		s.Domain, s.DomainSet = m.Domain, true
		s.TokenEnv, s.TokenFile, s.NoToken, s.TokenSet = "", m.TokenFile, false, true
	}
	var text bytes.Buffer
	if err := f.Encode(&text); err != nil {
		return nil, err
	}
	return desired.Load(f.Name, &text, "", func(string) (string, bool) { return "", false })
}
