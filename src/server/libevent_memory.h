// Where libevent's memory comes from.
//
// libevent keeps one small record per file descriptor number it has ever
// watched (its fd -> events map) and never frees it. Allocated while a
// connection is being set up, each record lands between that connection's
// buffers; when 10,000 connections close, every freed run of the heap still
// holds one of these records, so no page is ever wholly free and glibc can
// return none of them: RSS stays at its peak. Giving libevent's tiny
// allocations (<= 32 bytes) slots of their own, packed together, leaves the
// connections' memory in runs that malloc_trim can hand back.
//
// Call once, before any event base exists. Under AddressSanitizer and
// ThreadSanitizer nothing is installed, so they keep seeing every allocation.
#pragma once

namespace sessiond {

void InstallLibeventAllocator();

}  // namespace sessiond
