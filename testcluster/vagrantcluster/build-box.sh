#!/usr/bin/env bash
# Builds the hafw node box (Debian 12, cluster packages pre-installed) from
# Debian packages only and adds it to Vagrant as hafw/bookworm-node-<hash>,
# where <hash> is a hash of this script and ../images/node/packages: an
# unchanged recipe reuses the cached box.
# Usage: build-box.sh [--force] | name
#
# The host kernel has no partition support (no /dev/loopNp1, no kpartx, no nbd),
# so: MBR made with sfdisk on the file, the partition mounted through a loop
# device with an offset, mmdebstrap into it, GRUB put in place by hand
# (grub-mkimage + dd), then qemu-img convert to qcow2.
set -euo pipefail
. "$(dirname "$0")/env.sh"

readonly SUITE=bookworm
readonly MIRROR=${HAFW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly SIZE_GIB=8
readonly PART_START=2048 # sectors; 1 MiB, room for GRUB's core.img after the MBR
readonly INSECURE_KEY=/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/keys/vagrant.pub

# Base system: what Vagrant needs in the guest (systemd-networkd for its
# network files, dbus for hostnamectl, sudo, sshd, rsync).
readonly BASE_PACKAGES=(
	linux-image-amd64 initramfs-tools grub-pc-bin grub2-common
	systemd systemd-sysv dbus udev kmod
	openssh-server sudo rsync iproute2 iputils-ping procps netbase less zstd ca-certificates
)

log() { printf 'build-box.sh: %s\n' "$*"; }
die() { log "$*" >&2; exit 1; }

NAME=$(hafw_box_name)
HASH=$(hafw_box_hash)
readonly NAME HASH
readonly WORK=${HAFW_VAGRANT_STATE}/box/${HASH}

[[ ${1:-} == name ]] && { echo "${NAME}"; exit 0; }
[[ -z ${1:-} || ${1} == --force ]] || die "usage: $0 [--force] | name"
[[ ${EUID} -eq 0 ]] || die "must run as root"

# vagrant outside any project: the cwd's Vagrantfile (ours) is not loaded.
vg() { (cd / && env -u VAGRANT_CWD -u VAGRANT_DOTFILE_PATH vagrant "$@"); }
box_added() { vg box list 2>/dev/null | grep -q "^${NAME} .*libvirt"; }

if [[ ${1:-} != --force ]] && box_added; then
	log "box ${NAME} already added (cached)"
	exit 0
fi

MNT='' LOOP=''
cleanup() {
	set +e
	if [[ -n ${MNT} ]]; then
		for m in dev/pts dev proc sys; do mountpoint -q "${MNT}/${m}" && umount -l "${MNT}/${m}"; done
		mountpoint -q "${MNT}" && umount "${MNT}"
		rmdir "${MNT}"
	fi
	[[ -n ${LOOP} ]] && losetup -d "${LOOP}"
}
trap cleanup EXIT

build_image() {
	local raw=${WORK}/disk.raw uuid kver pkgs
	mkdir -p "${WORK}"
	rm -f "${raw}" "${WORK}/box.img"
	truncate -s "${SIZE_GIB}G" "${raw}"
	echo "start=${PART_START}, type=83, bootable" | sfdisk -q "${raw}"
	LOOP=$(losetup -f --show -o $((PART_START * 512)) \
		--sizelimit $(((SIZE_GIB * 1024 * 1024 * 1024) - PART_START * 512)) "${raw}")
	uuid=$(cat /proc/sys/kernel/random/uuid)
	mkfs.ext4 -q -L hafw-root -U "${uuid}" "${LOOP}"
	MNT=$(mktemp -d /tmp/hafw-box.XXXXXX)
	mount "${LOOP}" "${MNT}"

	mapfile -t pkgs < <(grep -Ev '^[[:space:]]*(#|$)' "${HAFW_VAGRANT_DIR}/../images/node/packages")
	log "mmdebstrap ${SUITE}: ${BASE_PACKAGES[*]} ${pkgs[*]}"
	# MODULES=list before the kernel is installed: a 6 MB initrd with only the
	# virtio + ext4 modules the guest needs instead of 30 MB with MODULES=most.
	mmdebstrap --variant=minbase --mode=root \
		--include="$(IFS=,; echo "${BASE_PACKAGES[*]},${pkgs[*]}")" \
		--setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"; echo MODULES=list > "$1/etc/initramfs-tools/conf.d/hafw.conf"' \
		--essential-hook='mkdir -p "$1/etc/initramfs-tools"; printf "%s\n" virtio_pci virtio_blk virtio_net virtio_console ext4 > "$1/etc/initramfs-tools/modules.hafw"' \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
		"${SUITE}" "${MNT}" "${MIRROR}"

	kver=$(basename "$(ls -d "${MNT}"/lib/modules/* | sort -V | tail -n1)")
	configure_guest "${uuid}" "${kver}"
	install_grub "${raw}" "${uuid}" "${kver}"

	fstrim "${MNT}" || true # 1.2 GiB -> 0.8 GiB qcow2
	umount "${MNT}"; rmdir "${MNT}"; MNT=''
	losetup -d "${LOOP}"; LOOP=''
	qemu-img convert -O qcow2 "${raw}" "${WORK}/box.img"
	rm -f "${raw}"
}

configure_guest() {
	local uuid=$1 kver=$2 r=${MNT}
	mount -t proc proc "${r}/proc"
	mount --bind /dev "${r}/dev"
	mount --bind /dev/pts "${r}/dev/pts"
	mount -t sysfs sysfs "${r}/sys"

	cat "${r}/etc/initramfs-tools/modules.hafw" >>"${r}/etc/initramfs-tools/modules"
	rm -f "${r}/etc/initramfs-tools/modules.hafw"
	chroot "${r}" update-initramfs -u -k "${kver}" >/dev/null

	echo "UUID=${uuid} / ext4 errors=remount-ro 0 1" >"${r}/etc/fstab"
	echo hafw-box >"${r}/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\thafw-box\n' >"${r}/etc/hosts"
	# Empty machine-id: generated on first boot; a shared one gives every VM
	# the same DHCP DUID and so the same management IP.
	: >"${r}/etc/machine-id"
	rm -f "${r}/var/lib/dbus/machine-id"

	# DHCP on every NIC; Vagrant's own 50-vagrant-*.network wins for the private one.
	mkdir -p "${r}/etc/systemd/network"
	printf '[Match]\nName=e*\n\n[Network]\nDHCP=ipv4\n' >"${r}/etc/systemd/network/99-dhcp.network"
	chroot "${r}" systemctl enable systemd-networkd >/dev/null 2>&1
	chroot "${r}" systemctl mask systemd-networkd-wait-online.service \
		apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
	# The cluster is formed by provisioning, not at boot with Debian's sample config.
	# pcsd-ruby alone takes 85 s of a TCG boot and ~200 MiB of a 512 MiB guest.
	local svc
	for svc in corosync pacemaker pcsd pcsd-ruby haproxy; do
		chroot "${r}" systemctl disable "${svc}" >/dev/null 2>&1 || true
	done
	chroot "${r}" systemctl mask e2scrub_reap.service >/dev/null 2>&1 || true # 90 s under TCG

	# sshd host key: per VM, made on first boot. Only ECDSA: ssh-keygen -A
	# (RSA 3072 + ECDSA + Ed25519) costs 30 s under TCG; Vagrant's net-ssh
	# verifies ECDSA without extra gems.
	local key=/etc/ssh/ssh_host_ecdsa_key
	rm -f "${r}"/etc/ssh/ssh_host_*
	mkdir -p "${r}/etc/systemd/system/ssh.service.d"
	printf '[Service]\nExecStartPre=\nExecStartPre=/bin/sh -c "test -s %s || ssh-keygen -q -t ecdsa -N \x27\x27 -f %s"\nExecStartPre=/usr/sbin/sshd -t\n' \
		"${key}" "${key}" >"${r}/etc/systemd/system/ssh.service.d/hafw-hostkeys.conf"
	printf 'UseDNS no\nHostKey %s\n' "${key}" >"${r}/etc/ssh/sshd_config.d/hafw.conf"

	# User vagrant with Vagrant's insecure key and passwordless sudo.
	chroot "${r}" useradd -m -s /bin/bash vagrant
	echo 'vagrant:vagrant' | chroot "${r}" chpasswd
	echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"${r}/etc/sudoers.d/vagrant"
	chmod 0440 "${r}/etc/sudoers.d/vagrant"
	install -d -m 0700 -o 1000 -g 1000 "${r}/home/vagrant/.ssh"
	install -m 0600 -o 1000 -g 1000 "${INSECURE_KEY}" "${r}/home/vagrant/.ssh/authorized_keys"
	[[ $(chroot "${r}" id -u vagrant) == 1000 ]] || die "vagrant is not uid 1000"

	chroot "${r}" apt-get clean
	rm -rf "${r}"/var/lib/apt/lists/* "${r}"/var/log/*.log "${r}"/tmp/*
	for m in dev/pts dev proc sys; do umount "${r}/${m}"; done
}

# GRUB by hand: core.img (biosdisk + msdos partition + ext2 driver, prefix on
# the partition) at sector 1, boot.img's code in the first 440 bytes of the MBR.
install_grub() {
	local raw=$1 uuid=$2 kver=$3 r=${MNT} sectors
	mkdir -p "${r}/boot/grub/i386-pc"
	cp "${r}"/usr/lib/grub/i386-pc/*.mod "${r}"/usr/lib/grub/i386-pc/*.lst "${r}/boot/grub/i386-pc/"
	chroot "${r}" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \
		-p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2
	sectors=$(( ($(stat -c %s "${r}/boot/grub/i386-pc/core.img") + 511) / 512 ))
	((sectors < PART_START - 1)) || die "core.img too big (${sectors} sectors)"
	cat >"${r}/boot/grub/grub.cfg" <<CFG
set timeout=0
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
insmod part_msdos
insmod ext2
search --no-floppy --fs-uuid --set=root ${uuid}
linux /boot/vmlinuz-${kver} root=UUID=${uuid} ro console=tty0 console=ttyS0,115200 quiet
initrd /boot/initrd.img-${kver}
boot
CFG
	dd if="${r}/usr/lib/grub/i386-pc/boot.img" of="${raw}" bs=440 count=1 conv=notrunc status=none
	dd if="${r}/boot/grub/i386-pc/core.img" of="${raw}" bs=512 seek=1 conv=notrunc status=none
}

package_box() {
	cat >"${WORK}/metadata.json" <<JSON
{"provider": "libvirt", "format": "qcow2", "virtual_size": ${SIZE_GIB}}
JSON
	cat >"${WORK}/Vagrantfile" <<'RUBY'
# Defaults of the hafw node box; the project's Vagrantfile sets the rest.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
RUBY
	tar -C "${WORK}" -cf "${WORK}/hafw-node.box" metadata.json Vagrantfile box.img
	vg box add --force --name "${NAME}" --provider libvirt "${WORK}/hafw-node.box"
	rm -f "${WORK}/hafw-node.box"
	remove_stale
}

# Boxes of older recipes, their work dirs and the base volumes vagrant-libvirt
# uploaded for them (`vagrant box remove` leaves those in the pool).
remove_stale() {
	local old vol
	for old in $(vg box list 2>/dev/null | awk '$1 ~ /^hafw\/bookworm-node-/ {print $1}'); do
		[[ ${old} == "${NAME}" ]] && continue
		vg box remove --force --all "${old}" >/dev/null 2>&1 && log "removed stale box ${old}"
		rm -rf "${HAFW_VAGRANT_STATE}/box/${old##*-}"
	done
	if virsh -q pool-info default >/dev/null 2>&1; then
		for vol in $(virsh -q vol-list default 2>/dev/null | awk '{print $1}' | grep '^hafw-VAGRANTSLASH-bookworm-node-'); do
			[[ ${vol} == "hafw-VAGRANTSLASH-bookworm-node-${HASH}_"* ]] && continue
			virsh -q vol-delete --pool default "${vol}" >/dev/null && log "deleted stale volume ${vol}"
		done
	fi
}

start=${SECONDS}
if [[ ${1:-} == --force || ! -s ${WORK}/box.img ]]; then
	build_image
	log "image built in $((SECONDS - start))s: $(du -h "${WORK}/box.img" | cut -f1)"
fi
t=${SECONDS}
package_box
log "box ${NAME} added in $((SECONDS - t))s (total $((SECONDS - start))s)"
