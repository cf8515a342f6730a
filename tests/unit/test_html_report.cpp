// The HTML build report: escaping of the embedded manifest, and (tag [chromium], its own
// ctest) the page as headless Chromium renders it, read from the DOM.
#include <catch2/catch.hpp>

#include "report/html_report.hpp"
#include "test_support.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

#include <regex>

using namespace bi;
using nlohmann::json;

namespace {

// A manifest as build-image writes it, with a hostile package name and note.
json sample_manifest() {
  return json{
      {"name", "php-full-0123456789ab"},
      {"file", "php-full-0123456789ab.qcow2"},
      {"cartridge", "php"},
      {"mode", "full"},
      {"format", "qcow2"},
      {"sha256", std::string(64, 'a')},
      {"file_size", 300 << 20},
      {"virtual_size", 4ull << 30},
      {"build_seconds", 70.5},
      {"inputs_key", std::string(64, 'b')},
      {"layers", {{"base", std::string(64, 'c')}, {"bootloader", std::string(64, 'd')}}},
      {"phases", json::array({{{"name", "base-os"}, {"seconds", 40.0}, {"note", "built c0ffee"}},
                              {{"name", "bootloader"}, {"seconds", 0.1}, {"note", "cached"}},
                              {{"name", "system"}, {"seconds", 20.0}, {"note", "remote 1234"}},
                              {{"name", "assemble"}, {"seconds", 8.0}, {"note", "</script><b id=injected>x</b>"}}})},
      {"packages",
       json::array({{{"name", "libc6"}, {"version", "2.36"}, {"installed_size_kib", 12000}},
                    {{"name", "php8.2"}, {"version", "8.2.1"}, {"installed_size_kib", 30000}},
                    {{"name", "<img src=x onerror=alert(1)>"}, {"version", "1"}, {"installed_size_kib", 1}}})},
      {"tree_sizes", {{"/usr", 400 << 20}, {"/var", 30 << 20}}},
      {"registrations", {{"openstack", {{"RegionOne", {{"image_id", "glance-id-1"}}}}}}}};
}

std::string extract_dom(const std::string& output) {
  const auto begin = output.find("<html");
  const auto end = output.rfind("</html>");
  if (begin == std::string::npos || end == std::string::npos) {
    return {};
  }
  return output.substr(begin, end + 7 - begin);
}

} // namespace

TEST_CASE("the embedded manifest cannot end its script element") {
  const std::string text = json_for_script_element(json{{"n", "</script><!-- & \xE2\x80\xA8"}});
  CHECK(text.find('<') == std::string::npos);
  CHECK(text.find('>') == std::string::npos);
  CHECK(text.find('&') == std::string::npos);
  CHECK(text.find("\xE2\x80\xA8") == std::string::npos);
  CHECK(json::parse(text)["n"] == "</script><!-- & \xE2\x80\xA8");
}

TEST_CASE("the report page is self-contained") {
  // The page around the data: no attribute a browser would load, no address but the SVG
  // namespace name (an identifier, never fetched).
  const std::string page = render_html_report(nlohmann::json::object());
  CHECK_FALSE(std::regex_search(page, std::regex(R"(\s(src|href)\s*=)")));
  CHECK_FALSE(std::regex_search(page, std::regex(R"(https?://(?!www\.w3\.org/2000/svg"))")));
  CHECK(render_html_report(sample_manifest()).find("</script><b id=injected>") == std::string::npos);
}

TEST_CASE("Chromium renders the timeline and the package table without script errors", "[chromium]") {
  test::Scratch s;
  const auto page = s.write("report.html", render_html_report(sample_manifest()));
  RunOptions options;
  options.timeout = std::chrono::seconds(120);
  auto run =
      run_process({"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--user-data-dir=" + (s.path() / "profile").string(), "--dump-dom", "file://" + page.string()},
                  options);
  REQUIRE(run);
  INFO(run->output);
  REQUIRE(run->exit_code == 0);
  const std::string dom = extract_dom(run->output);
  REQUIRE_FALSE(dom.empty());
  // The script sets this as its last statement: any error before it leaves it unset.
  CHECK(std::regex_search(dom, std::regex(R"(<body[^>]*data-rendered="ok")")));
  // One bar per phase, coloured by where the layer came from.
  for (const char* bar : {R"(class="bar built" data-phase="base-os")", R"(class="bar cached" data-phase="bootloader")",
                          R"(class="bar remote" data-phase="system")"}) {
    CHECK(dom.find(bar) != std::string::npos);
  }
  // The package table, largest first; a hostile name is text, not markup.
  const auto php = dom.find("<td>php8.2</td>");
  const auto libc = dom.find("<td>libc6</td>");
  REQUIRE(php != std::string::npos);
  REQUIRE(libc != std::string::npos);
  CHECK(php < libc);
  CHECK(dom.find("&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
  CHECK(dom.find("id=\"injected\"") == std::string::npos);
  CHECK(dom.find("<td class=\"key\">glance-id-1</td>") != std::string::npos);
  CHECK(dom.find("<td class=\"key\">/usr</td>") != std::string::npos);
}
