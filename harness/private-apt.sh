# shellcheck shell=bash
# Sourced by the fetch scripts: a private apt configuration, so that fetching
# a package (the kernel source, the kpatch tool) leaves the machine's own
# apt sources and state untouched.

# private_apt(dir, suite) - an apt configuration in dir that lists suite's
# main component of the Debian archive the machine's own sources name; sets
# apt_host and apt_opts (the options every apt-get/apt-cache call takes)
private_apt() {
	local dir=$1 suite=$2
	mkdir -p "$dir/lists/partial" "$dir/archives/partial"
	apt_host=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 || true)
	apt_host=${apt_host%/}
	[[ -n $apt_host ]] || apt_host=http://deb.debian.org/debian
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $apt_host $suite main" >"$dir/sources.list"
	apt_opts=(
		-o Dir::Etc::sourcelist="$dir/sources.list"
		-o Dir::Etc::sourceparts=-
		-o Dir::State::Lists="$dir/lists"
		-o Dir::Cache::Archives="$dir/archives"
		-o APT::Get::List-Cleanup=0
		-o Debug::NoLocking=1
	)
}

# private_apt_newest(package) - the newest version of package the private
# configuration offers (empty if none)
private_apt_newest() {
	apt-cache "${apt_opts[@]}" madison "$1" 2>/dev/null |
		awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -V | tail -n1
}
