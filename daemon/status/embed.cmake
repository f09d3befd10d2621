# Writes OUT, a C file holding each of FILES as `const unsigned char status_asset_<NAME>[]` and
# its length, NAMES giving the names in the same order (see daemon/status_assets.h). Run as
#   cmake -DOUT=... -DFILES="a;b" -DNAMES="x;y" -P embed.cmake
set(text "/* Generated from daemon/status/ by daemon/status/embed.cmake: do not edit. */\n")
string(APPEND text "#include <stddef.h>\n\n#include \"status_assets.h\"\n")
string(REPEAT "0x[0-9a-f][0-9a-f]," 12 row) # CMake's regular expressions have no {12}
list(LENGTH FILES n)
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  list(GET FILES ${i} file)
  list(GET NAMES ${i} name)
  file(READ ${file} hex HEX)
  string(LENGTH "${hex}" hex_len)
  if(hex_len EQUAL 0)
    message(FATAL_ERROR "embed.cmake: ${file} is empty")
  endif()
  math(EXPR size "${hex_len} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(${row})" "\\1\n        " bytes "${bytes}")
  get_filename_component(base ${file} NAME)
  string(APPEND text "\n/* ${name}: daemon/status/${base} */\n"
         "const unsigned char status_asset_${name}[${size}] = {\n        ${bytes}\n};\n"
         "const size_t status_asset_${name}_len = ${size};\n")
endforeach()
file(WRITE ${OUT} "${text}")
