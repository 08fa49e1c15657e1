// Package examples ships slum's example fleet file inside the binary, for
// 'slum demo'.
package examples

import _ "embed"

// Fleet is examples/fleet.yaml.
//
//go:embed fleet.yaml
var Fleet string
