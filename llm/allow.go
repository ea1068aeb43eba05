package llm

import "strings"

// AllowList is the models users may choose: "provider/model" entries and
// "provider/*" for every model of a provider. An empty list allows every
// model.
type AllowList []string

// Allows reports whether the user-facing name "provider/model" is allowed.
func (a AllowList) Allows(name string) bool {
	if len(a) == 0 {
		return true
	}
	for _, e := range a {
		if e == name {
			return true
		}
		if p, ok := strings.CutSuffix(e, "/*"); ok && strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}
