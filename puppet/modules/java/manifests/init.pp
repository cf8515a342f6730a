# @summary A headless Java runtime from Debian (dependent app of tomcat).
#
# @param packages
#   Debian packages providing the runtime.
class java (
  Array[String[1]] $packages = ['default-jre-headless'],
) {
  # The image excludes /usr/share/man from packages (dpkg path-exclude), but the JRE's
  # postinst registers java with update-alternatives, whose man page link needs the
  # directory: without it the package fails to configure.
  file { ['/usr/share/man', '/usr/share/man/man1']:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  # No Recommends: they would pull in fonts and desktop libraries a server never uses.
  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
    require         => File['/usr/share/man/man1'],
  }
}
