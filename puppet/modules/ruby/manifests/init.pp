# @summary A small Rack application served by puma, from Debian packages (ruby-rack,
#   puma), as the systemd unit rack-app.service. The application (config.ru) answers every
#   request with "RUBYOK <Ruby version>"; replace it (or point app_dir elsewhere) to serve
#   your own.
#
# @param port
#   TCP port puma listens on.
# @param bind_address
#   Address puma binds to.
# @param app_dir
#   Directory of the application; config.ru in it is managed only when manage_app is true.
# @param manage_app
#   Write the sample config.ru.
# @param max_threads
#   Maximum number of puma threads.
# @param service_name
#   Name of the systemd unit.
# @param packages
#   Debian packages: Rack and the puma web server (which pulls in Ruby).
class ruby (
  Integer[1, 65535] $port = 3000,
  Pattern[/\A[0-9A-Za-z.:\[\]-]+\z/] $bind_address = '0.0.0.0',
  Pattern[/\A\/[^\s]*\z/] $app_dir = '/srv/rack-app',
  Boolean $manage_app = true,
  Integer[1] $max_threads = 5,
  Pattern[/\A[a-z][a-z0-9-]*\z/] $service_name = 'rack-app',
  Array[String[1]] $packages = ['ruby-rack', 'puma'],
) {
  $unit = "/etc/systemd/system/${service_name}.service"

  package { $packages:
    ensure          => installed,
    install_options => ['--no-install-recommends'],
  }

  file { $app_dir:
    ensure => directory,
    owner  => 'root',
    group  => 'root',
    mode   => '0755',
  }

  if $manage_app {
    file { "${app_dir}/config.ru":
      ensure  => file,
      owner   => 'root',
      group   => 'root',
      mode    => '0644',
      content => @(RACKUP),
        # Managed by Puppet (module ruby): the sample Rack application of the ruby cartridge.
        run lambda { |_env| [200, { 'Content-Type' => 'text/plain' }, ["RUBYOK #{RUBY_VERSION}\n"]] }
        | RACKUP
    }
  }

  file { $unit:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => epp('ruby/rack-app.service.epp', {
      'app_dir'      => $app_dir,
      'bind_address' => $bind_address,
      'port'         => $port,
      'max_threads'  => $max_threads,
    }),
  }

  $app_files = $manage_app ? {
    true    => [File[$unit], File["${app_dir}/config.ru"]],
    default => [File[$unit]],
  }
  service { $service_name:
    * => base::service_attributes($app_files, [Package[$packages]]),
  }
}
