//! The audio player of a recording's report: the `<audio>` element, a "play" button per timed
//! segment, and the one script the page is allowed to run.

use std::fmt::Write as _;

use super::escape::esc;
use crate::model::Item;

/// The audio player's only script: "play" buttons seek the recording to their segment, and a
/// link to `#<item id>` opens the report at that segment. It is allowed by its hash alone, so
/// no other script (injected or not) can run. It records what it did in `data-*` attributes.
pub(super) const PLAYER_SCRIPT: &str = "(function(){var a=document.getElementById('player');if(!a)return;\
function mark(){a.setAttribute('data-position',a.currentTime.toFixed(2));}\
function go(t,play){a.currentTime=t;mark();if(play){var p=a.play();if(p&&p.catch)p.catch(function(){});}}\
a.addEventListener('loadedmetadata',function(){a.setAttribute('data-duration',a.duration.toFixed(2));\
var h=decodeURIComponent(location.hash.slice(1));var b=h&&document.querySelector('button.play[data-item=\"'+CSS.escape(h)+'\"]');\
if(b)go(parseFloat(b.getAttribute('data-start')),false);});\
a.addEventListener('seeked',mark);\
a.addEventListener('error',function(){a.setAttribute('data-error','could not load the recording');});\
document.querySelectorAll('button.play').forEach(function(b){b.addEventListener('click',function(){\
go(parseFloat(b.getAttribute('data-start')),true);});});})();";

/// The "Recording" section: the player loading the recording from `url`.
pub(super) fn render_player(b: &mut String, url: &str) {
    let _ = write!(
        b,
        "<h2>Recording</h2><audio id=\"player\" controls preload=\"metadata\" src=\"{}\">\
         Your browser cannot play this recording.</audio>",
        esc(url)
    );
}

/// The button that seeks the player to `item`, which starts at `start` seconds.
pub(super) fn play_button(out: &mut String, item: &Item, start: f64) {
    let _ = write!(
        out,
        "<button class=\"play\" type=\"button\" data-item=\"{}\" data-start=\"{start:.2}\">▶ play</button> ",
        esc(&item.id)
    );
}
