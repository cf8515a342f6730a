# @summary The cartridge agent on a generic instance configured by a Puppet master:
#   optional apt source, package cartridge-agent, /etc/cartridge-agent/agent.conf and the
#   cartridge-agent service.
#
# Defaults come from the instance payload (fact cartridge_payload, see
# lib/facter/cartridge_payload.rb). At run time the agent lets the payload override
# mb.urls, ports and service.name again (docs/image-contract.md).
#
# @param package_repo
#   An apt source line (or a flat repository's URL) for the repository holding
#   cartridge-agent, written to /etc/apt/sources.list.d/cartridge-agent.list by class
#   agent::repo (unless `base` already declared that from the payload). Default: payload
#   key PACKAGE_REPO; none: the image's sources are used.
# @param mb_urls
#   Comma-separated host:port of the MQTT brokers. Default: payload MB_IP:MB_PORT.
# @param ports
#   Pipe-separated ports the agent waits for before "activated". Default: payload PORTS.
# @param service_name
#   Cartridge type. Default: payload SERVICE_NAME (site.pp passes the certname's label).
# @param listen_address
#   Address the agent checks the ports on.
# @param port_check_timeout
#   Seconds to wait for the ports.
# @param stats_interval
#   Seconds between health statistics.
# @param payload_file
#   Payload path the agent reads (through systemd's LoadCredential).
# @param package_name
#   Debian package of the agent.
# @param package_ensure
#   `ensure` of that package.
class agent (
  Optional[Agent::Reposource] $package_repo = agent::payload_value('PACKAGE_REPO'),
  Pattern[/\A[^\s,]+:[0-9]+(,[^\s,]+:[0-9]+)*\z/] $mb_urls = agent::default_mb_urls(),
  Optional[Pattern[/\A[0-9]+(\|[0-9]+)*\z/]] $ports = agent::payload_value('PORTS'),
  Optional[Pattern[/\A[A-Za-z0-9][A-Za-z0-9_.-]*\z/]] $service_name = agent::payload_value('SERVICE_NAME'),
  Pattern[/\A[^\s]+\z/] $listen_address = 'localhost',
  Integer[1] $port_check_timeout = 600,
  Integer[1] $stats_interval = 15,
  Pattern[/\A\/[^\s]*\z/] $payload_file = '/var/lib/cartridge/launch-params',
  String[1] $package_name = 'cartridge-agent',
  String[1] $package_ensure = 'installed',
) {
  # A package repository: its source and the apt-get update execs come from class
  # agent::repo (`base` has usually declared it already, from the payload, so that every
  # package of the node comes from there). Without one, the image's sources.
  if defined(Class['agent::repo']) {
    # declared by base
  } elsif $package_repo =~ String {
    class { 'agent::repo':
      package_repo => $package_repo,
    }
  } else {
    # At most one `apt-get update` per run: when the image has no package lists at all
    # (mmdebstrap removes them).
    exec { 'cartridge-agent apt-get update':
      command     => '/usr/bin/apt-get update',
      refreshonly => true,
      logoutput   => on_failure,
      timeout     => 600,
    }
    exec { 'cartridge-agent apt lists':
      command   => '/usr/bin/apt-get update',
      unless    => '/bin/sh -c "ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1"',
      logoutput => on_failure,
      timeout   => 600,
      require   => Exec['cartridge-agent apt-get update'],
    }
  }

  package { $package_name:
    ensure          => $package_ensure,
    install_options => ['--no-install-recommends'],
    require         => Exec['cartridge-agent apt lists'],
  }

  file { '/etc/cartridge-agent':
    ensure  => directory,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    require => Package[$package_name],
  }

  file { '/etc/cartridge-agent/agent.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('agent/agent.conf.epp', {
      'mb_urls'            => $mb_urls,
      'service_name'       => $service_name,
      'ports'              => $ports,
      'listen_address'     => $listen_address,
      'port_check_timeout' => $port_check_timeout,
      'stats_interval'     => $stats_interval,
      'payload_file'       => $payload_file,
    }),
    require => Package[$package_name],
  }

  # --no-block: the unit is ordered after cartridge-init.service (so that in full mode it
  # finds the payload), and in generic mode this very Puppet run happens inside
  # cartridge-init. A blocking `systemctl start` would wait for its own caller to finish
  # and hang until cartridge-init's timeout; queued, the agent starts as soon as
  # cartridge-init is done.
  service { 'cartridge-agent':
    * => base::service_attributes(
      [File['/etc/cartridge-agent/agent.conf']], [Package[$package_name]], 'cartridge-agent'
    ),
  }
}
