# frozen_string_literal: true

# Fact cartridge_payload: the instance payload that cartridge-init normalised into
# /var/lib/cartridge/launch-params (one KEY=VALUE per line), as a hash of strings.
#
# - Keys that do not match ^[A-Za-z_][A-Za-z0-9_]*$ are skipped, and so are values that
#   are empty or the literal "null" (Stratos writes absent values as "null").
# - Secrets are left out, because facts travel to the Puppet master (and PuppetDB):
#   TOKEN, CARTRIDGE_KEY and any key containing PASSWORD, SECRET, CREDENTIAL or ending
#   in _TOKEN or _KEY.
# - The file is root-only; the fact is absent when it cannot be read or holds no key.
# - CARTRIDGE_LAUNCH_PARAMS in the environment names another file (tests).
Facter.add(:cartridge_payload) do
  confine kernel: 'Linux'

  setcode do
    path = ENV['CARTRIDGE_LAUNCH_PARAMS'] || '/var/lib/cartridge/launch-params'
    secret = /\A(TOKEN|CARTRIDGE_KEY)\z|PASSWORD|SECRET|CREDENTIAL|_TOKEN\z|_KEY\z/i
    payload = {}
    begin
      text = File.binread(path).force_encoding(Encoding::UTF_8).scrub('?')
      text.each_line do |line|
        key, sep, value = line.delete("\r\n").partition('=')
        next if sep.empty?
        key = key.strip
        value = value.strip
        next unless key.match?(/\A[A-Za-z_][A-Za-z0-9_]*\z/)
        next if key.match?(secret)
        next if value.empty? || value == 'null'
        payload[key] = value
      end
    rescue SystemCallError, IOError
      payload = {}
    end
    payload.empty? ? nil : payload
  end
end
