# An apt source line (`deb [trusted=yes] http://10.0.2.102/ ./`) or the URL of a flat
# repository (class agent::repo writes `deb [trusted=yes] <URL> ./` for it).
type Agent::Reposource = Variant[
  Pattern[/\Adeb(-src)?[ \t]+[^\r\n]+\z/],
  Pattern[/\Ahttps?:\/\/[^\s]+\z/],
]
