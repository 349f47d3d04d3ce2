# embed.cmake - writes the dashboard's files (NAMES, comma-separated, in the
# folder SRC) into a C file as byte arrays, for dashboard.c to serve:
#   cmake -DSRC=<folder> -DNAMES=index.html,app.js -DOUT=<file.c> -P embed.cmake
# CMakeLists.txt runs it whenever one of them changes. No xxd needed.
string(REPLACE "," ";" names "${NAMES}")
set(out "/* generated from src/server/dashboard/ by embed.cmake: do not edit */\n")
string(APPEND out "#include \"server/dashboard/assets.h\"\n\n")
set(table "")
set(i 0)
foreach(name ${names})
  file(READ "${SRC}/${name}" hex HEX)
  file(SIZE "${SRC}/${name}" size)
  # 12 bytes a line, each 0xNN,
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)"
         "\\1\n    " hex "${hex}")
  string(APPEND out "static const unsigned char asset${i}[] = {\n    ${hex}0x00};\n")
  string(APPEND table "    {\"${name}\", asset${i}, ${size}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND out "\nconst srv_dash_asset srv_dash_assets[] = {\n${table}};\n")
string(APPEND out "const int srv_dash_n_assets = ${i};\n")
file(WRITE "${OUT}" "${out}")
