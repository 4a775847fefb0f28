package storage

import (
	"errors"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"job/000001/MANIFEST.json", true},
		{"a.b-c_d", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"../a", false},
		{"a/./b", false},
		{"a/..", false},
		{"a\\b", false},
		{"a\x00b", false},
		{".ark-tmp/x", false},
		{"a/.ark-x", false},
		{".hidden", true},
		{"caf\xe9", false},
		{"café/ü", true},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if tt.ok && err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", tt.key, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", tt.key, err)
		}
	}
}
