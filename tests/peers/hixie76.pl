#!/usr/bin/env perl
# hixie-76 (hybi-00) echo check with Debian's Protocol::WebSocket (libprotocol-websocket-perl).
#
#   perl tests/peers/hixie76.pl HOST PORT
#
# Protocol::WebSocket::Client->new ignores its `version` for the handshake (it builds its
# Handshake::Client without it, so the request would be RFC 6455), hence this script drives
# Protocol::WebSocket::Handshake::Client and ::Frame directly, both with
# version => 'draft-ietf-hybi-00'. The library generates random Key1/Key2/key3 and checks the
# server's 16-byte MD5 answer itself ("Checksum is wrong." otherwise).
# Note: for hybi-00 this library also sends "Content-Length: 8" with the key3 body (browsers
# did not); a server must cope with both.
use strict;
use warnings;
use IO::Socket::INET;
use Encode qw(encode decode);
use Protocol::WebSocket::Handshake::Client;
use Protocol::WebSocket::Frame;

my $VERSION_76 = 'draft-ietf-hybi-00';
my $TIMEOUT    = 5;    # seconds, for every blocking step

@ARGV == 2 or die "usage: hixie76.pl HOST PORT\n";
my ($host, $port) = @ARGV;

sub fail { print "FAIL hixie76.pl: @_\n"; exit 1 }

# Run one blocking step under alarm().
sub bounded {
    my ($what, $code) = @_;
    my @r = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $TIMEOUT;
        my @r = $code->();
        alarm 0;
        @r;
    };
    alarm 0;
    if ($@) {
        chomp(my $e = $@);
        fail("$what: " . ($e eq 'timeout' ? "timeout after ${TIMEOUT}s" : $e));
    }
    return wantarray ? @r : $r[0];
}

my $sock = bounded('connect', sub {
    IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp')
      or die "cannot connect to $host:$port: $!\n";
});
binmode $sock;

# Read some bytes; '' at EOF.
sub read_some {
    my ($what) = @_;
    return bounded($what, sub {
        my $n = sysread($sock, my $buf, 65536);
        die "read error: $!\n" unless defined $n;
        return $buf;
    });
}

sub write_all {
    my ($bytes) = @_;
    bounded('write', sub {
        my $off = 0;
        while ($off < length $bytes) {
            my $n = syswrite($sock, $bytes, length($bytes) - $off, $off);
            die "write error: $!\n" unless defined $n;
            $off += $n;
        }
    });
}

# ---- handshake
my $url = "ws://$host:$port/perl/hixie76";
my $hs  = Protocol::WebSocket::Handshake::Client->new(url => $url, version => $VERSION_76);
my $req = $hs->to_string;
$req =~ /^Sec-WebSocket-Key1: /m or fail("library did not build a hixie-76 request:\n$req");
write_all($req);

my $rest = '';
until ($hs->is_done) {
    my $buf = read_some('handshake response');
    length $buf or fail('server closed the connection during the handshake');
    $hs->parse($buf) or fail('handshake rejected by Protocol::WebSocket: ' . $hs->error);
    $rest = $buf;    # parse() consumes what it used; anything left is frame data
}
my $res = $hs->res;
$res->version eq $VERSION_76 or fail('response parsed as ' . $res->version . ', not hixie-76');
$res->location eq $url or fail("Sec-WebSocket-Location is '" . $res->location . "', expected '$url'");
print "ok   handshake (MD5 answer verified by Protocol::WebSocket, location $url)\n";

# ---- echo
my $frames = Protocol::WebSocket::Frame->new(version => $VERSION_76);
$frames->append($rest);

sub next_message {
    my ($what) = @_;
    while (1) {
        my $bytes = $frames->next_bytes;
        return $bytes if defined $bytes;
        my $buf = read_some($what);
        length $buf or fail("server closed the connection while waiting for $what");
        $frames->append($buf);
    }
}

my @messages = ("hello from Perl", '', "h\x{e9}llo \x{263a} \x{65e5}\x{672c} \x{1F600}", 'y' x 100_000);
for my $msg (@messages) {
    my $out = Protocol::WebSocket::Frame->new(version => $VERSION_76, buffer => $msg);
    write_all($out->to_bytes);
    my $got = next_message('echo');
    $frames->is_close and fail('got a closing frame instead of the echo');
    my $want = encode('UTF-8', $msg);
    $got eq $want or fail(sprintf("echo mismatch: sent %d bytes '%s', got %d bytes '%s'",
        length $want, substr($want, 0, 40), length $got, substr($got, 0, 40)));
    printf "ok   echo of %d-byte message\n", length $want;
}

# ---- closing handshake: FF 00 -> FF 00, then the server closes TCP
write_all(Protocol::WebSocket::Frame->new(version => $VERSION_76, type => 'close')->to_bytes);
my $got = next_message('closing handshake');
$frames->is_close or fail("expected FF 00, got a message: '" . substr($got, 0, 40) . "'");
print "ok   closing handshake FF 00 answered\n";
my $leftover = $frames->{buffer} // '';
length $leftover and fail('bytes after the closing handshake: ' . unpack('H*', substr($leftover, 0, 32)));
my $eof = read_some('TCP close after the closing handshake');
length $eof and fail('bytes instead of EOF after closing handshake: ' . unpack('H*', substr($eof, 0, 32)));
print "ok   server closed TCP\n";
close $sock;
print "hixie76.pl: all checks passed\n";
exit 0;
