# @summary A value of the instance payload (fact cartridge_payload), or undef when the
#   key is absent, empty or "null".
# @param key
#   Payload key, e.g. 'MB_IP'.
function agent::payload_value(String[1] $key) >> Optional[String] {
  $payload = $facts['cartridge_payload']
  $value = $payload ? {
    Hash    => $payload[$key],
    default => undef,
  }
  if $value =~ Undef or String($value) in ['', 'null'] {
    undef
  } else {
    String($value)
  }
}
