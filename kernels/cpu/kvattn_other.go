//go:build !amd64

package cpu

var useKVAttnAVX2 = false

func kvScores(sc, q, keys []float32, scale float32) { kvScoresGo(sc, q, keys, scale) }

func kvWeighted(out, w, vals []float32, scale float32) { kvWeightedGo(out, w, vals, scale) }
