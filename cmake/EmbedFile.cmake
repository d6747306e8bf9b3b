# Writes OUTPUT, a C++ file defining promptcache::internal::kEmbeddedPrices
# with the bytes of INPUT, as a hex array (no limits on literal length).
file(READ ${INPUT} content HEX)
string(LENGTH "${content}" hex_length)
math(EXPR byte_count "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUTPUT}
  "// Generated from ${INPUT}; do not edit.\n"
  "#include <cstddef>\n"
  "namespace promptcache::internal {\n"
  "extern const unsigned char kEmbeddedPrices[];\n"
  "extern const size_t kEmbeddedPricesSize;\n"
  "const unsigned char kEmbeddedPrices[] = {${bytes}};\n"
  "const size_t kEmbeddedPricesSize = ${byte_count};\n"
  "}  // namespace promptcache::internal\n")
