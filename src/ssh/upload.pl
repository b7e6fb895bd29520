# hactl's file writer, run as root on the host: `perl -e THIS -- PATH MODE OWNER GROUP SIZE
# DIR_OWNER [CHECK...]`, the content on stdin. No path-based operation runs in a directory another
# user can write: the directory is reached by walking from / through descriptors (O_NOFOLLOW),
# each step checked; the temporary file is created O_EXCL|O_NOFOLLOW and written, chowned,
# chmodded and fsynced through its descriptor; the rename happens inside the directory (cwd is
# the directory's descriptor), so it never crosses filesystems; afterwards the name must lead to
# the inode we wrote. Perl because perl-base is Essential on Debian and Ubuntu.
# Exit: 0 written, 1 failed, 3 unsafe directory (refused), 4 CHECK rejected the file,
# 5 another user removed or swapped the file before it landed.
use strict;
use warnings;
use Fcntl qw(O_RDONLY O_WRONLY O_CREAT O_EXCL O_NOFOLLOW O_DIRECTORY);
use IO::Handle;

my ($path, $mode, $owner, $group, $size, $dir_owner, @check) = @ARGV;
my $tmp;
END { unlink $tmp if defined $tmp }

sub stop {
    my ($code, $msg) = @_;
    print STDERR "$msg\n";
    exit $code;
}

my $uid = getpwnam($owner);
defined $uid or stop(1, "no user $owner");
my $gid = getgrnam($group);
defined $gid or stop(1, "no group $group");
my $dir_uid = getpwnam($dir_owner);
defined $dir_uid or stop(1, "no user $dir_owner");
my ($dir, $base) = $path =~ m{^(.*)/([^/]+)\z} or stop(1, "bad path $path");

my @shown;    # the directory reached so far, for messages and CHECK
sub shown { '/' . join('/', @shown, @_) }

sub name_of {
    my $name = getpwuid($_[0]);
    defined $name ? $name : "uid $_[0]";
}

# Only root may write a directory on the way; the file's own directory may also belong to
# DIR_OWNER (e.g. rabbitmq's home), and then only the rename and the O_EXCL create touch it.
sub check_dir {
    my ($h, $final) = @_;
    my ($m, $u, $g) = (stat $h)[2, 4, 5];
    my $where = shown();
    stop(3, sprintf("refusing to write %s: %s is world-writable (mode %04o)", $path, $where, $m & 07777))
      if $m & 002;
    stop(3, sprintf("refusing to write %s: %s is group-writable (mode %04o, group %s)",
                    $path, $where, $m & 07777, scalar(getgrgid($g)) // "gid $g"))
      if ($m & 020) && $g != 0;
    my $ok = $u == 0 || ($final && $u == $dir_uid);
    my $want = $final && $dir_uid != 0 ? "root or $dir_owner" : "root";
    stop(3, "refusing to write $path: $where is owned by " . name_of($u) . ", expected $want")
      unless $ok;
}

sub enter {
    my ($name, $shown) = @_;
    sysopen(my $h, $name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
      or stop(1, "cannot open directory $shown: $!");
    chdir $h or stop(1, "cannot enter $shown: $!");
    return $h;
}

my @todo = grep { length && $_ ne '.' } split m{/}, $dir;
my $here = enter('/', '/');
check_dir($here, !@todo);
my $links = 0;
while (@todo) {
    my $c = shift @todo;
    if (-l $c) {
        # Followed only because it sits in a directory no one but root can write.
        ++$links <= 40 or stop(1, "too many symbolic links on the way to $path");
        my $target = readlink $c;
        defined $target or stop(1, "cannot read link " . shown($c) . ": $!");
        if ($target =~ m{^/}) {
            $here = enter('/', '/');
            @shown = ();
        }
        unshift @todo, grep { length && $_ ne '.' } split m{/}, $target;
        next;
    }
    $here = enter($c, shown($c));
    if ($c eq '..') { pop @shown } else { push @shown, $c }
    check_dir($here, !@todo);
}
my $where = shown();

my $fh;
for (1 .. 20) {
    my $name = sprintf('.%s.hactl-%08x', $base, int(rand(0xffffffff)));
    if (sysopen($fh, $name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600)) {
        $tmp = $name;
        last;
    }
    stop(1, "cannot create a temporary file in $where: $!") unless $!{EEXIST};
}
defined $tmp or stop(1, "cannot create a temporary file in $where");
binmode STDIN;
my $got = 0;
while (1) {
    my $n = sysread(STDIN, my $buf, 65536);
    defined $n or stop(1, "cannot read the content: $!");
    last if $n == 0;
    my $off = 0;
    while ($off < $n) {
        my $w = syswrite($fh, $buf, $n - $off, $off);
        defined $w or stop(1, "cannot write $where/$tmp: $!");
        $off += $w;
    }
    $got += $n;
}
$got == $size or stop(1, "upload incomplete: received $got of $size bytes");
# chown first: it clears set-id bits, which the chmod then sets exactly.
chown $uid, $gid, $fh or stop(1, "cannot chown $where/$tmp: $!");
chmod oct($mode), $fh or stop(1, "cannot chmod $where/$tmp: $!");
$fh->sync or stop(1, "cannot fsync $where/$tmp: $!");

if (@check) {
    my @cmd = map { $_ eq '{}' ? "$where/$tmp" : $_ } @check;
    open(STDOUT, '>&', \*STDERR) or stop(1, "cannot redirect stdout: $!");
    system { $cmd[0] } @cmd;
    stop(4, "`$check[0]` rejected the new $path; the old one is kept") if $? != 0;
}

unless (rename $tmp, $base) {
    stop(5, "$where/$tmp was removed by another user before it could land as $path") if $!{ENOENT};
    stop(1, "cannot rename $where/$tmp to $path: $!");
}
undef $tmp;
my @mine = stat $fh;
my @now = lstat $base;
stop(5, "$path was replaced by another user while it was being written; it is not hactl's file")
  unless @now && $now[0] == $mine[0] && $now[1] == $mine[1];
if (sysopen(my $d, '.', O_RDONLY | O_DIRECTORY)) { $d->sync }
exit 0;
