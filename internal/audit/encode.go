package audit

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEntry appends e's JSON to dst: the bytes json.Marshal writes for
// it, without reflection (it was half the log's cost on the leader). A time
// outside UTC or the years 0-9999 (which json.Marshal may refuse) goes
// through json.Marshal, for its exact bytes or error. TestAppendEntryIsMarshal
// and FuzzAppendEntry hold it to json.Marshal.
func appendEntry(dst []byte, e *Entry) ([]byte, error) {
	if _, off := e.Time.Zone(); off != 0 || e.Time.Year() < 0 || e.Time.Year() > 9999 {
		js, err := json.Marshal(*e) // a copy: e itself stays off the heap
		if err != nil {
			return dst, err
		}
		return append(dst, js...), nil
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","phase":`...)
	dst = appendString(dst, e.Phase)
	dst = append(dst, `,"request":`...)
	dst = appendString(dst, e.Request)
	dst = appendOmitEmpty(dst, `,"accessor":`, e.Accessor)
	dst = appendOmitEmpty(dst, `,"role":`, e.Role)
	dst = appendOmitEmpty(dst, `,"namespace":`, e.Namespace)
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, e.Method)
	dst = append(dst, `,"route":`...)
	dst = appendString(dst, e.Route)
	dst = appendOmitEmpty(dst, `,"target":`, e.Target)
	dst = appendOmitEmpty(dst, `,"remote":`, e.Remote)
	if e.Code != 0 {
		dst = append(dst, `,"code":`...)
		dst = strconv.AppendInt(dst, int64(e.Code), 10)
	}
	dst = appendOmitEmpty(dst, `,"outcome":`, e.Outcome)
	dst = append(dst, `,"prev":`...)
	dst = appendString(dst, e.Prev)
	dst = append(dst, `,"hash":`...)
	dst = appendString(dst, e.Hash)
	return append(dst, '}'), nil
}

func appendOmitEmpty(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping on (what
// json.Marshal uses): `"` and `\` escaped, \b \f \n \r \t by name, other
// control bytes and <, >, & as \u00XX, invalid UTF-8 as \ufffd, U+2028
// and U+2029 as \u2028 and \u2029.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
