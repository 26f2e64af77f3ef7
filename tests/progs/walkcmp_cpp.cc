// Walker comparison, C++: the shim's stack walker against libunwind (see walkcmp.h) on C++
// stacks: std::sort's inlined templates, std::call_once (libstdc++ and libc frames), std::function,
// virtual calls, frames with destructors and try blocks (landing pads), a 100-frame template
// recursion, a shared library, and std::thread. Built -O0 and -O2 -fomit-frame-pointer.
#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "walkcmp.h"
int walkcmp_lib_call(int depth, void (*cb)(void));
}

#define NOINLINE __attribute__((noinline))
static volatile int sink;

struct Guard {
    std::string name;
    explicit Guard(const char *n) : name(n) {}
    ~Guard() { sink += (int)name.size(); }
};

template <int N> struct Rec {
    NOINLINE static int go(const char *what)
    {
        Guard g("rec");
        int r = Rec<N - 1>::go(what);
        sink += r;
        return r + 1;
    }
};
template <> struct Rec<0> {
    NOINLINE static int go(const char *what)
    {
        wc_compare(what);
        return 0;
    }
};

struct Base {
    virtual ~Base() = default;
    virtual void run() = 0;
};
struct Derived : Base {
    NOINLINE void run() override
    {
        try {
            Guard g("virtual");
            wc_compare("virtual_try");
            if (sink < 0)
                throw std::runtime_error("never");
        } catch (const std::exception &) {
            sink++;
        }
    }
};

static void cb_shlib() { wc_compare("cpp_shlib"); sink++; }

NOINLINE static void sort_case()
{
    std::vector<int> v{5, 3, 9, 1, 7, 2, 8, 6, 4, 0, 11, 15, 13, 12, 14, 10, 19, 17};
    bool once = false;
    std::sort(v.begin(), v.end(), [&](int a, int b) {
        if (!once) {
            once = true;
            wc_compare("std_sort");
        }
        return a < b;
    });
    sink += v[0];
}

NOINLINE static void call_once_case()
{
    static std::once_flag flag;
    std::call_once(flag, [] { wc_compare("call_once"); });
}

NOINLINE static void function_case()
{
    std::function<void(int)> f = [](int x) {
        Guard g("function");
        wc_compare("std_function");
        sink += x;
    };
    f(3);
}

int main(int argc, char **)
{
    wc_setup();
    sort_case();
    call_once_case();
    function_case();
    std::unique_ptr<Base> b(new Derived);
    b->run();
    Rec<100>::go("template_recursion100");
    walkcmp_lib_call(3, cb_shlib);
    std::thread t([] { Rec<10>::go("std_thread"); });
    t.join();
    sink += argc;
    return wc_finish();
}
