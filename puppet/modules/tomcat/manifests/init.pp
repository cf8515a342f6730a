# @summary Apache Tomcat 10 from Debian (package tomcat10) serving a ROOT webapp whose
#   index.jsp prints "TOMCATOK <server info>". Needs a Java runtime (class java, its
#   dependent app; tomcat10 would otherwise pull one in through its dependencies).
#
# @param port
#   Port of the HTTP connector.
# @param address
#   Address the connector binds to; undef: every address.
# @param connection_timeout
#   connectionTimeout of the connector, in milliseconds.
# @param packages
#   Debian packages for Tomcat.
# @param service_name
#   The systemd unit of Tomcat.
# @param config_dir
#   Tomcat's configuration directory (server.xml).
# @param webapps_dir
#   appBase of the default host; the ROOT webapp is in ROOT/ below it.
class tomcat (
  Integer[1, 65535] $port = 8080,
  Optional[Pattern[/\A[0-9A-Za-z.:-]+\z/]] $address = undef,
  Integer[1] $connection_timeout = 20000,
  Array[String[1]] $packages = ['tomcat10'],
  String[1] $service_name = 'tomcat10',
  Pattern[/\A\/[^\s]*\z/] $config_dir = '/etc/tomcat10',
  Pattern[/\A\/[^\s]*\z/] $webapps_dir = '/var/lib/tomcat10/webapps',
) {
  # No Recommends: libtcnative-1 is optional (Tomcat falls back to pure Java).
  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
  }

  # Owner, group and mode as the package's postinst sets them: readable, not writable,
  # by the tomcat user.
  file { "${config_dir}/server.xml":
    ensure  => file,
    owner   => 'root',
    group   => 'tomcat',
    mode    => '0640',
    content => epp('tomcat/server.xml.epp', {
      'port'               => $port,
      'address'            => $address,
      'connection_timeout' => $connection_timeout,
    }),
    require => Package[$packages],
  }

  # The package's postinst copies a default ROOT webapp in place; ours replaces its page.
  file { "${webapps_dir}/ROOT":
    ensure  => directory,
    owner   => 'root',
    group   => 'root',
    mode    => '0755',
    require => Package[$packages],
  }

  file { "${webapps_dir}/ROOT/index.jsp":
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "<%@ page contentType=\"text/plain\" %>TOMCATOK <%= application.getServerInfo() %>\n",
  }

  # index.html comes first in Tomcat's welcome files: it would hide index.jsp.
  file { "${webapps_dir}/ROOT/index.html":
    ensure => absent,
  }

  service { $service_name:
    * => base::service_attributes([Package[$packages], File["${config_dir}/server.xml"]]),
  }
}
