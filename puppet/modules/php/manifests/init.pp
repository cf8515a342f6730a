# @summary Apache httpd with mod_php from Debian, serving an index.php that prints
#   "PHPOK <PHP version>".
#
# @param docroot
#   Document root of the default virtual host.
# @param packages
#   Debian packages for Apache and PHP.
# @param server_admin
#   ServerAdmin of the default virtual host.
class php (
  Pattern[/\A\/[^\s]*\z/] $docroot = '/var/www/html',
  Array[String[1]] $packages = ['apache2', 'libapache2-mod-php'],
  String[1] $server_admin = 'webmaster@localhost',
) {
  # No Recommends: they would add ssl-cert, which bakes one snakeoil key into every VM.
  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
  }

  if $docroot != '/var/www/html' {
    file { $docroot:
      ensure  => directory,
      owner   => 'root',
      group   => 'root',
      mode    => '0755',
      require => Package[$packages],
    }
  }

  file { '/etc/apache2/sites-available/000-default.conf':
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('php/000-default.conf.epp', {
      'docroot'      => $docroot,
      'server_admin' => $server_admin,
    }),
    require => Package[$packages],
  }

  file { "${docroot}/index.php":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "PHPOK <?php echo PHP_VERSION; ?>\n",
    require => Package[$packages],
  }

  # Debian's default page would win over index.php.
  file { "${docroot}/index.html":
    ensure  => absent,
    require => Package[$packages],
  }

  service { 'apache2':
    * => base::service_attributes([Package[$packages], File['/etc/apache2/sites-available/000-default.conf']]),
  }
}
