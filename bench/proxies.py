"""Start evproxyd, HAProxy or nginx (stream) with one listener per (listen port, upstream port)
pair, N workers / threads / processes, optional CPU pinning and idle timeout: the proxies of
bench/scaling and bench/cost-curves. Processes go through run-peers' Procs (own process group,
20,000-file limit, stopped by group)."""
import importlib.machinery
import importlib.util
import os

HERE = os.path.dirname(os.path.abspath(__file__))
NGINX_STREAM = "/usr/lib/nginx/modules/ngx_stream_module.so"


def load_run_peers():
    """bench/run-peers as a module: its process, port and CPU helpers."""
    loader = importlib.machinery.SourceFileLoader("run_peers", os.path.join(HERE, "run-peers"))
    spec = importlib.util.spec_from_loader("run_peers", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


P = load_run_peers()


def config(kind, d, pairs, workers=1, idle_s=0, metrics_port=None, admin=None):
    """(argv, config path) for kind with a listener per (lp, up) in pairs."""
    if kind == "evproxyd":
        routes = ",\n".join(f"""  {{ name = "r{i}"; listen = [ "127.0.0.1:{lp}" ];
    upstreams = [ "127.0.0.1:{up}" ]; idle_timeout = {idle_s}; }}"""
                            for i, (lp, up) in enumerate(pairs))
        extra = f'metrics = {{ listen = "127.0.0.1:{metrics_port}"; }};\n' if metrics_port else ""
        extra += (f'admin = {{ listen = "{admin}"; state_file = "{d}/state"; }};\n'
                  if admin else "")
        path = P.write(os.path.join(d, "evproxy.conf"), f"""workers = {workers};
log_level = "warning";
access_log = false;
max_connections = 1000000;
{extra}routes = (
{routes}
);
""")
        return [None, "-c", path], path
    if kind == "haproxy":
        t = "%ds" % idle_s if idle_s else "1h"
        ls = "".join(f"listen r{i}\n    bind 127.0.0.1:{lp}\n    server up 127.0.0.1:{up}\n"
                     for i, (lp, up) in enumerate(pairs))
        path = P.write(os.path.join(d, "haproxy.cfg"), f"""global
    nbthread {workers}
defaults
    mode tcp
    timeout connect 5s
    timeout client {t}
    timeout server {t}
    maxconn {P.NOFILE}
{ls}""")
        return ["haproxy", "-db", "-f", path], path
    if kind == "nginx":
        t = "%ds" % idle_s if idle_s else "1h"
        load = f"load_module {NGINX_STREAM};\n" if os.path.exists(NGINX_STREAM) else ""
        srv = "".join(f"  server {{ listen 127.0.0.1:{lp} backlog=4096{' reuseport' if workers > 1 else ''}; "
                      f"proxy_pass 127.0.0.1:{up}; proxy_timeout {t}; }}\n" for lp, up in pairs)
        path = P.write(os.path.join(d, "nginx.conf"),
                       load + P.nginx_common(d, workers) + "stream {\n" + srv + "}\n")
        return ["nginx", "-p", d + "/", "-e", d + "/error.log", "-c", path], path
    raise ValueError(kind)


def check_argv(kind, evproxyd, path, d):
    """The proxy's own configuration check (-t / -c)."""
    if kind == "evproxyd":
        return [evproxyd, "-t", "-c", path]
    if kind == "haproxy":
        return ["haproxy", "-c", "-f", path]
    return ["nginx", "-t", "-p", d + "/", "-e", d + "/error.log", "-c", path]


def start(kind, procs, wd, pairs, evproxyd, workers=1, cpuset=None, idle_s=0,
          metrics_port=None, admin=None, name=None, wait=True):
    """Start kind; returns its Popen (None if it did not listen within 60 s)."""
    name = name or "%s-%d" % (kind, workers)
    d = os.path.join(wd, name)
    os.makedirs(d, exist_ok=True)
    argv, _ = config(kind, d, pairs, workers, idle_s, metrics_port, admin)
    if kind == "evproxyd":
        argv[0] = evproxyd
    if cpuset:
        argv = ["taskset", "-c", cpuset] + argv
    p = procs.start(name, argv)
    if wait and not P.wait_listening([pairs[0][0], pairs[-1][0]], [p], timeout=60):
        procs.stop([p])
        return None
    return p


def main_pid(kind, p):
    """The process that carries the connections: nginx's one worker, else p itself."""
    return P.main_pid("nginx" if kind == "nginx" else kind, [p])


def run_at_nice(nice):
    """--nice: this process (and so the clients it runs) and every process Procs starts at that
    nice, each session's autogroup included (see run-peers --nice). Re-executes the script under
    setsid(1) when it leads a process group and so cannot start a session itself."""
    import sys
    if nice is None:
        return
    if os.getsid(0) != os.getpid():
        try:
            os.setsid()
        except PermissionError:
            os.execvp("setsid", ["setsid", "-w", sys.executable] + sys.argv)
    P.PRIORITY = nice
    P.prioritize(os.getpid())
