package rules

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// maxMatchBytes is the longest match of the regular expression expr in
// UTF-8 bytes, and false when it has none (an unbounded repeat, or one
// that does not parse). An output filter holds back one byte less than
// this: the longest text a match still being generated can span.
func maxMatchBytes(expr string) (int, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return 0, false
	}
	return maxBytes(re.Simplify())
}

// maxBytes bounds what re matches; Simplify has turned counted repeats
// into concatenations and quests.
func maxBytes(re *syntax.Regexp) (int, bool) {
	switch re.Op {
	case syntax.OpNoMatch, syntax.OpEmptyMatch:
		return 0, true
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// An assertion reads the text around the match, and the filter
		// matches from where it last released: such a rule keeps the
		// whole Window of context, as before.
		return 0, false
	case syntax.OpLiteral:
		n := 0
		for _, r := range re.Rune {
			n += runeBytes(r, re.Flags&syntax.FoldCase != 0)
		}
		return n, true
	case syntax.OpCharClass:
		// The widest rune in the class; ranges come in pairs.
		w := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			w = max(w, utf8.RuneLen(min(re.Rune[i+1], unicode.MaxRune)))
		}
		return w, true
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return utf8.UTFMax, true
	case syntax.OpCapture, syntax.OpQuest:
		return maxBytes(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			m, ok := maxBytes(sub)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case syntax.OpAlternate:
		n := 0
		for _, sub := range re.Sub {
			m, ok := maxBytes(sub)
			if !ok {
				return 0, false
			}
			n = max(n, m)
		}
		return n, true
	case syntax.OpRepeat:
		if re.Max < 0 {
			return 0, false
		}
		m, ok := maxBytes(re.Sub[0])
		return m * re.Max, ok
	}
	// Star, plus: unbounded.
	return 0, false
}

// runeBytes is r's UTF-8 length, or with fold the longest of its case
// forms ('k' also matches the three-byte Kelvin sign).
func runeBytes(r rune, fold bool) int {
	n := utf8.RuneLen(r)
	if n < 0 {
		n = utf8.UTFMax
	}
	if !fold {
		return n
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		n = max(n, utf8.RuneLen(f))
	}
	return n
}
