# @summary WordPress from Debian (package wordpress) on Apache httpd with mod_php, talking
#   to a local MariaDB (class mysql, its dependent app) or to a remote database named in
#   the payload.
#
# No database password is in the catalog or the image. A oneshot unit,
# wordpress-db-init.service, runs /usr/local/sbin/wordpress-db-init once per instance at
# first boot (after cartridge-init has written the payload and MariaDB has started): it
# takes DB_HOST, DB_NAME, DB_USER and DB_PASSWORD from the payload, generates the password
# (and WordPress's keys and salts) when the payload has none, creates the database and user
# on the local MariaDB through root's unix socket, and writes $config_file (0640
# root:www-data). On a generic instance configured by the master (fact cartridge_build not
# true), first boot is already over when Puppet runs: Puppet runs the same script once,
# guarded by the same marker file.
#
# @param db_name
#   Default database name (the payload's DB_NAME wins).
# @param db_user
#   Default database user (the payload's DB_USER wins).
# @param db_host
#   Default database host[:port] (the payload's DB_HOST wins); localhost: the local MariaDB.
# @param config_file
#   The WordPress config the script writes. Debian's wp-config.php reads
#   /etc/wordpress/config-<Host header>.php, then config-default.php.
# @param payload_file
#   The payload written by cartridge-init.
# @param marker
#   Written once the database and the config are ready; the unit does not run again then.
# @param restrict_local_db
#   Make the local MariaDB listen on 127.0.0.1 only (70-wordpress.cnf, read after the
#   mysql class's 60-cartridge.cnf): on a WordPress node it serves WordPress alone.
# @param server_admin
#   ServerAdmin of the virtual host.
# @param packages
#   Debian packages: Apache, mod_php, the MySQL extension, WordPress and one theme (a
#   Recommends of wordpress, which are not installed).
class wordpress (
  Pattern[/\A[A-Za-z0-9_]{1,64}\z/] $db_name = 'wordpress',
  Pattern[/\A[A-Za-z0-9_]{1,80}\z/] $db_user = 'wordpress',
  Pattern[/\A[A-Za-z0-9._-]{1,253}(:[0-9]{1,5})?\z/] $db_host = 'localhost',
  Pattern[/\A\/[^\s]*\z/] $config_file = '/etc/wordpress/config-default.php',
  Pattern[/\A\/[^\s]*\z/] $payload_file = '/var/lib/cartridge/launch-params',
  Pattern[/\A\/[^\s]*\z/] $marker = '/var/lib/cartridge/wordpress-db-initialized',
  Boolean $restrict_local_db = true,
  String[1] $server_admin = 'webmaster@localhost',
  Array[String[1]] $packages = ['apache2', 'libapache2-mod-php', 'php-mysql', 'wordpress',
    'wordpress-theme-twentytwentythree'],
) {
  # While a full image is built in a chroot (fact cartridge_build=true) services cannot
  # run: units are only enabled then.
  $building = String($facts['cartridge_build']) == 'true'
  $script = '/usr/local/sbin/wordpress-db-init'
  $command = join([$script, '--payload', $payload_file, '--config', $config_file, '--marker', $marker,
    '--db-name', $db_name, '--db-user', $db_user, '--db-host', $db_host], ' ')

  # No Recommends: they would add ssl-cert, which bakes one snakeoil key into every VM.
  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
  }

  file { '/etc/apache2/sites-available/000-default.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('wordpress/000-default.conf.epp', { 'server_admin' => $server_admin }),
    require => Package[$packages],
  }

  file { $script:
    ensure => file,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
    source => 'puppet:///modules/wordpress/wordpress-db-init',
  }

  file { '/etc/systemd/system/wordpress-db-init.service':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('wordpress/wordpress-db-init.service.epp', {
      'command' => $command,
      'marker'  => $marker,
    }),
  }

  if $restrict_local_db {
    file { '/etc/mysql/mariadb.conf.d/70-wordpress.cnf':
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => "# Managed by Puppet (module wordpress): the local MariaDB serves WordPress only.\n[mysqld]\nbind-address = 127.0.0.1\n",
      require => Package[$packages],
    }
  }

  service { 'apache2':
    * => base::service_attributes([Package[$packages], File['/etc/apache2/sites-available/000-default.conf']]),
  }
  # Enabled for the boots to come (the unit's condition makes it a no-op once done; a full
  # image runs it at its first boot). Never started here. provider => systemd: in a chroot
  # Puppet would otherwise choose the debian provider.
  service { 'wordpress-db-init':
    enable   => true,
    provider => systemd,
    require  => [File[$script], File['/etc/systemd/system/wordpress-db-init.service']],
  }

  unless $building {
    # First boot is over on a generic instance: run the script now, once.
    exec { 'wordpress-db-init':
      command   => $command,
      creates   => $marker,
      logoutput => true,
      require   => [Package[$packages], File[$script]],
      before    => Service['apache2'],
    }
    if $restrict_local_db {
      # The mysql class (ordered before this one) has started MariaDB already.
      exec { 'wordpress: restart the local MariaDB':
        command     => '/bin/systemctl try-restart mariadb.service',
        refreshonly => true,
        subscribe   => File['/etc/mysql/mariadb.conf.d/70-wordpress.cnf'],
        before      => Exec['wordpress-db-init'],
      }
    }
  }
}
