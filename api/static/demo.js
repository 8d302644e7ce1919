// The snippet shown to integrators uses this server's real address.
(() => {
  var origin = location.origin && location.origin !== 'null' ? location.origin : 'https://kb.example.com';
  var code =
    '<script src="' +
    origin +
    '/widget.js" data-title="在线客服" data-color="#1f6feb"\n' +
    '        data-welcome="' +
    (document.querySelector('script[data-welcome]')?.dataset.welcome || '您好！请问有什么可以帮您？') +
    '" async></script>';
  document.getElementById('snippet').textContent = code;
  document.getElementById('copy-snippet').addEventListener('click', () => {
    var note = document.getElementById('copy-note');
    var done = (ok) => {
      note.textContent = ok ? '已复制' : '复制失败，请手动选择代码';
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code).then(
        () => {
          done(true);
        },
        () => {
          done(false);
        },
      );
    } else {
      const ta = document.createElement('textarea');
      ta.value = code;
      ta.style.position = 'fixed';
      ta.style.left = '-9999px';
      document.body.appendChild(ta);
      ta.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      document.body.removeChild(ta);
      done(ok);
    }
  });
})();
