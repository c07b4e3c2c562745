/* SPDX-License-Identifier: GPL-2.0 */
/*
 * klp-rs relocation selftests: how their livepatches name what they reach.
 *
 *	extern char *saved KLP_RS_SYM(".klp.sym.vmlinux.saved_command_line,0");
 *
 * declares a livepatch symbol (Documentation/livepatch/module-elf-format.rst)
 * that the code then uses like any other. The compiler leaves an undefined
 * symbol of that name with ordinary relocations against it; host/klp-convert
 * (run by harness/build.sh, options in klp-convert.list) moves those into
 * .klp.rela.<object>.<section> sections and marks the symbol SHN_LIVEPATCH.
 *
 * Weak, as upstream klp-build makes them: modpost ignores weak undefined
 * symbols, while a strong one would fail the build ("undefined!").
 */
#ifndef _TEST_KLP_RS_RELOC_H
#define _TEST_KLP_RS_RELOC_H

#define KLP_RS_SYM(name) __asm__(name) __weak

#endif
