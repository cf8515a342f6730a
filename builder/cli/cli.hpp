#pragma once
// The command-line interface: one table of subcommands gives help, dispatch and
// did-you-mean. `main` only calls build_image_main.

namespace bi {

int build_image_main(int argc, char** argv);

} // namespace bi
