# Node classification for cartridge instances (Puppet 7).
#
# Stratos certnames are <digits>.<DEPLOYMENT>.<SERVICE_NAME>.<puppet domain...>, written by
# cartridge-init. The service is label 2 of the certname, compared exactly: the original
# Stratos site.pp used unanchored regexes, so /php/ also matched a master domain containing
# "php" and /default/ matched every node (DEPLOYMENT is always "default").
#
# Every node gets `base`. A known service then gets its classes, in the order listed
# (dependent apps first), and, unless the fact cartridge_build is true (a full image being
# built in a chroot), `agent`. An unknown service gets only `base` and a notice naming it.

# Service name => ordered list of classes: dependent apps first, then server apps, the
# same lists as the cartridge's YAML (templates/<service>.yaml), so a generic instance gets
# exactly what a full image build applies.
$cartridge_services = {
  'php'       => ['php'],
  'tomcat'    => ['java', 'tomcat'],
  'mysql'     => ['mysql'],
  'wordpress' => ['mysql', 'wordpress'],
  'ruby'      => ['ruby'],
}

# Services have no `provider` default: each service resource in the modules sets
# provider => systemd itself, because Puppet in a chroot otherwise picks the debian
# provider and "enables" units through SysV links only.

node default {
  $certname = $trusted['certname']
  $labels = split($certname, /\./)
  $service = $labels[2]
  $building = String($facts['cartridge_build']) == 'true'

  include base

  # A hash lookup compares keys exactly (Puppet's `in` and `==` ignore case on strings).
  $service_classes = $service ? {
    String  => $cartridge_services[$service],
    default => undef,
  }
  if $service_classes =~ Array {
    $service_classes.each |String $class_name| {
      include $class_name
    }
    if $building {
      $chain = ['base'] + $service_classes
    } else {
      class { 'agent':
        service_name => $service,
      }
      $chain = ['base'] + $service_classes + ['agent']
    }
    # base -> first app -> ... -> agent
    $chain.reduce |String $before, String $after| {
      Class[$before] -> Class[$after]
      $after
    }
  } else {
    $shown = $service ? {
      undef   => '(none)',
      default => $service,
    }
    notify { 'cartridge-unknown-service':
      message  => "cartridge: unknown service ${shown} in certname ${certname}: only class base applied",
      loglevel => warning,
    }
  }
}
