package llm

import "testing"

func TestAllowList_Allows(t *testing.T) {
	tests := []struct {
		list AllowList
		name string
		want bool
	}{
		{nil, "a/b", true},
		{AllowList{"a/b"}, "a/b", true},
		{AllowList{"a/b"}, "a/bc", false},
		{AllowList{"a/*"}, "a/x/y", true},
		{AllowList{"a/*"}, "ab/x", false},
		{AllowList{"b/c", "a/*"}, "b/d", false},
	}
	for _, tt := range tests {
		if got := tt.list.Allows(tt.name); got != tt.want {
			t.Errorf("%v.Allows(%q) = %v, want %v", tt.list, tt.name, got, tt.want)
		}
	}
}
