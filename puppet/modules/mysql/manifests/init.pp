# @summary MariaDB from Debian (package mariadb-server), the "mysql" cartridge and the
#   local database of wordpress.
#
# No password is set, at build time or later: root authenticates through the unix socket
# (Debian's default: `mariadb` as root on the instance), and accounts for applications
# are created per instance at first boot by the modules that need them (see wordpress).
# The data directory created by the package holds only the system tables then.
#
# @param bind_address
#   Address the server listens on (bind-address). Debian's default is 127.0.0.1; a data
#   cartridge serves other instances, so all addresses by default. Only accounts created
#   per instance can log in over the network (root is socket-only).
# @param port
#   TCP port of the server.
# @param packages
#   Debian packages for the server.
# @param service_name
#   The systemd unit of the server.
class mysql (
  Pattern[/\A[0-9A-Za-z.:*-]+\z/] $bind_address = '0.0.0.0',
  Integer[1, 65535] $port = 3306,
  Array[String[1]] $packages = ['mariadb-server'],
  String[1] $service_name = 'mariadb',
) {
  # No Recommends: compression plugins and perl templates a server does not need.
  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
  }

  file { '/etc/mysql/mariadb.conf.d/60-cartridge.cnf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('mysql/60-cartridge.cnf.epp', {
      'bind_address' => $bind_address,
      'port'         => $port,
    }),
    require => Package[$packages],
  }

  service { $service_name:
    * => base::service_attributes([Package[$packages], File['/etc/mysql/mariadb.conf.d/60-cartridge.cnf']]),
  }
}
