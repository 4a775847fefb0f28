# GPT-2's pre-tokenizer pattern in Perl, whose regex engine has the
# lookahead and Unicode classes Go's lacks: the differential reference for
# Pretokenize. Reads hex-encoded UTF-8 strings, one a line; writes each
# string's pieces, hex-encoded, comma-separated, one line each.
use strict;
use warnings;
use Encode qw(decode encode);

while (my $line = <STDIN>) {
    chomp $line;
    my $s = decode("UTF-8", pack("H*", $line), Encode::FB_CROAK);
    my @m = ($s =~ /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/g);
    print join(",", map { unpack("H*", encode("UTF-8", $_)) } @m), "\n";
}
