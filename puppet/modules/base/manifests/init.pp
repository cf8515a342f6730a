# @summary What every cartridge instance gets: a few packages and the Puppet agent
#   daemon kept off (cartridge-init runs `puppet agent --onetime` itself); with a payload
#   PACKAGE_REPO, that apt source first (agent::repo).
#
# @param packages
#   Debian packages every instance has.
# @param manage_puppet_service
#   Keep puppet.service disabled (and stopped, outside an image build).
class base (
  Array[String[1]] $packages = ['ca-certificates', 'curl'],
  Boolean $manage_puppet_service = true,
) {
  $building = String($facts['cartridge_build']) == 'true'

  # A payload naming a package repository (PACKAGE_REPO): its apt source and lists come
  # before every package of the node (class agent::repo), so a guest without a Debian
  # mirror installs everything from there.
  if agent::payload_value('PACKAGE_REPO') =~ String {
    include agent::repo
  }

  # No Recommends: they would add ssl-cert, which bakes one snakeoil key into every VM.
  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
  }

  if $manage_puppet_service {
    # provider => systemd: in a chroot Puppet would otherwise choose the debian provider.
    # No `ensure` while building: services cannot run (or be stopped) in a chroot.
    $puppet_ensure = $building ? {
      true    => undef,
      default => stopped,
    }
    service { 'puppet':
      ensure   => $puppet_ensure,
      enable   => false,
      provider => systemd,
    }
  }
}
