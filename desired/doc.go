// Package desired holds the rules of a fleet's desired state, as pure
// functions over the vocabulary in package slum: validation and
// normalisation of every server, tenant, instance, token and setting before
// anything is written or sent; placement (Placer); fleet files (Parse, Load,
// and their encoding, Send and Receive, for a file that travels to the API);
// and Diff, which turns a fleet file and the current state into the changes
// an apply makes. It reads and writes nothing: package store carries the
// changes out, in one transaction, on whichever engine holds the fleet.
package desired
