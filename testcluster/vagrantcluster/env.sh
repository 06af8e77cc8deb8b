# Shared settings of the Vagrant/libvirt backend; sourced by build-box.sh and run.sh.
# shellcheck shell=bash
HAFW_VAGRANT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HAFW_VAGRANT_STATE=${HAFW_VAGRANT_STATE:-/var/lib/hafw-vagrant}
# A private Vagrant home: boxes and plugins of this project only.
export VAGRANT_HOME=${VAGRANT_HOME:-${HAFW_VAGRANT_STATE}/vagrant.d}
# No phoning home (no network besides the Debian mirror anyway).
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1
export VAGRANT_DEFAULT_PROVIDER=libvirt
export LIBVIRT_DEFAULT_URI=qemu:///system

# Recipe of the box: this script's inputs. Editing any of them changes the box name.
hafw_box_recipe() {
	cat "${HAFW_VAGRANT_DIR}/build-box.sh" "${HAFW_VAGRANT_DIR}/../images/node/packages"
}
hafw_box_hash() { hafw_box_recipe | sha256sum | cut -c1-12; }
hafw_box_name() { printf 'hafw/bookworm-node-%s\n' "$(hafw_box_hash)"; }
