# @summary The instance's package repository (payload PACKAGE_REPO): an apt source in
#   /etc/apt/sources.list.d/cartridge-agent.list and its package lists, ordered before
#   every package resource of the catalog.
#
# `base` includes it when the payload has PACKAGE_REPO, so every package of the node
# (base, the cartridge's apps, cartridge-agent) can come from it: a boot-test guest reaches
# no Debian mirror. Only this source is fetched (`Dir::Etc::sourcelist`), so an
# unreachable mirror in the image's sources.list cannot stall or fail the run; lists of
# other sources are kept (`APT::Get::List-Cleanup=0`).
#
# @param package_repo
#   An apt source line (`deb [trusted=yes] http://10.0.2.102/ ./`), or just the URL of a
#   flat repository (written as `deb [trusted=yes] <URL> ./`). Default: payload key
#   PACKAGE_REPO (required: without a repository, class agent keeps the image's sources).
class agent::repo (
  Agent::Reposource $package_repo = agent::payload_value('PACKAGE_REPO'),
) {
  $repo_file = '/etc/apt/sources.list.d/cartridge-agent.list'

  $line = $package_repo ? {
    /\Adeb/ => $package_repo,
    default => "deb [trusted=yes] ${package_repo} ./",
  }
  $update = join([
    '/usr/bin/apt-get update',
    "-o Dir::Etc::sourcelist=${repo_file}",
    '-o Dir::Etc::sourceparts=-',
    '-o APT::Get::List-Cleanup=0',
  ], ' ')

  file { $repo_file:
    ensure  => file,
    owner   => 'root',
    group   => 'root',
    mode    => '0644',
    content => "# Managed by Puppet (module agent)\n${line}\n",
    notify  => Exec['cartridge-agent apt-get update'],
  }

  # At most one `apt-get update` per run: after the source changes (refresh), or when
  # there are no package lists at all (mmdebstrap removes them; also a retry after a
  # failed update). Same titles as class agent's execs without a repository.
  exec { 'cartridge-agent apt-get update':
    command     => $update,
    refreshonly => true,
    logoutput   => on_failure,
    timeout     => 600,
  }
  exec { 'cartridge-agent apt lists':
    command   => $update,
    unless    => '/bin/sh -c "ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1"',
    logoutput => on_failure,
    timeout   => 600,
    require   => Exec['cartridge-agent apt-get update'],
  }

  # Every package of the catalog installs after the source and its lists.
  Class['agent::repo'] -> Package <| |>
}
