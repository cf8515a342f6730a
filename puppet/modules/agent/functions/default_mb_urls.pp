# @summary The message broker address from the payload: "MB_IP:MB_PORT" (port 1883 when
#   MB_PORT is absent), else '127.0.0.1:1883'.
function agent::default_mb_urls() >> String {
  $ip = agent::payload_value('MB_IP')
  $port = agent::payload_value('MB_PORT')
  if $ip =~ Undef {
    '127.0.0.1:1883'
  } elsif $port =~ Undef {
    "${ip}:1883"
  } else {
    "${ip}:${port}"
  }
}
