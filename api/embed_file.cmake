# embed_file.cmake - writes a C file holding one file's bytes, so that a
# binary carries the file (the API its OpenAPI description, from
# schemas/openapi.yaml). Called with -DIN=<file> -DOUT=<file.c> -DNAME=<C
# name>; defines `const char NAME[]` (NUL-terminated) and `NAME_len`.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(src ${IN} NAME)
file(WRITE ${OUT}.tmp "/* Generated from ${src} by embed_file.cmake; do not edit. */\n#include <stddef.h>\n\nextern const char ${NAME}[];\nextern const size_t ${NAME}_len;\nconst char ${NAME}[] = {${bytes}0};\nconst size_t ${NAME}_len = ${len};\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
