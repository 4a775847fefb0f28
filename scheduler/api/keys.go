package api

// NamespaceKeyDeleteResponse answers DELETE
// /v1/operator/namespace-keys/{namespace}: the key that was forgotten.
type NamespaceKeyDeleteResponse struct {
	Namespace string `json:"namespace"`
	KeyID     string `json:"keyId"`
	Index     uint64 `json:"index"`
}
