# @summary The attributes of a cartridge's service, one rule for every module: while a full
#   image is built in a chroot (fact cartridge_build=true) the unit is only enabled, since
#   nothing can run there and a restart would be meaningless; on an instance it is running
#   and restarted when one of its inputs changes. Use: `service { 'x': * => ... }`.
#   provider => systemd in both modes: in a chroot Puppet would otherwise choose the debian
#   provider, whose `enable` only makes SysV links (see full-image-fastpath.md).
# @param inputs
#   What the service is made from (packages, configuration files; `Package[$list]` is a
#   list itself): ordering only while
#   building; at run time a change to any of them restarts the service.
# @param requires
#   Ordered before the service in both modes, never a restart trigger.
# @param no_block_unit
#   When set, start and restart that unit without waiting for the job
#   (`systemctl --no-block`): for a unit ordered after the very unit whose Puppet run starts
#   it (cartridge-init), where a blocking start would wait for its own caller.
function base::service_attributes(
  Array[Variant[Type[Resource], Array[Type[Resource]]]] $inputs,
  Array[Variant[Type[Resource], Array[Type[Resource]]]] $requires = [],
  Optional[String[1]] $no_block_unit = undef,
) >> Hash[String, Any] {
  if String($facts['cartridge_build']) == 'true' {
    $build_time = { 'enable' => true, 'provider' => 'systemd', 'require' => flatten($requires, $inputs) }
    $build_time
  } else {
    $commands = $no_block_unit ? {
      undef   => {},
      default => {
        'start'   => "/bin/systemctl start --no-block ${no_block_unit}.service",
        'restart' => "/bin/systemctl restart --no-block ${no_block_unit}.service",
      },
    }
    $run_time = {
      'ensure'    => 'running',
      'enable'    => true,
      'provider'  => 'systemd',
      'require'   => flatten($requires),
      'subscribe' => flatten($inputs),
    }
    $run_time + $commands
  }
}
