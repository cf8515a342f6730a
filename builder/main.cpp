#include "cli/cli.hpp"

int main(int argc, char** argv) { return bi::build_image_main(argc, argv); }
