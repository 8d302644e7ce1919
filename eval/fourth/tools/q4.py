from q1 import Q, add
add('bj-trapped','asr_noisy','电梯 电梯坏了 卡住了 我在里面 出不来 按警铃 没人理')
add('bj-roommate-conflict','asr_noisy','我室友 老是 不打扫 厨房 垃圾 堆着 都臭了 你们 管不管')
add('bj-utility-split','asr_noisy','合租的 那个 水电 公摊 我刚搬来 为什么 要交 上个月的')
add('bj-staff-complaint','asr_noisy','那个维修 师傅 放我鸽子 说好 来 没来 电话 也不接 我要 投诉')
add('bj-parking-bikes','asr_noisy','小区 停车 停车证 在哪 办 是找 你们 还是 找 物业')
add('bj-deposit-refund','asr_noisy','压金 退了没 我退房 一个月了 压金 还没 到账')

OOS = [
 ('off_topic','明天北京下雪吗，要不要穿羽绒服'),
 ('off_topic','附近有没有好吃的炸酱面馆推荐一个'),
 ('off_topic','你们公司还招管家吗，一个月能挣多少'),
 ('off_topic','帮我写一份请假条，就说家里有事'),
 ('off_topic','天津到北京南的高铁晚上还有票吗'),
 ('off_topic','今天北京限行尾号是几'),
 ('off_topic','周末想去爬山，北京周边哪儿好玩'),
 ('off_topic','最近有什么好看的电影'),
 ('off_topic','北京哪家医院看牙比较靠谱'),
 ('off_topic','红烧肉怎么做才不腻'),
 ('off_topic','故宫门票怎么预约'),
 ('off_topic','旧手机去哪儿回收价格高'),
 ('near_domain','居住证是去派出所办还是去社区办'),
 ('near_domain','我们小区单元门晚上几点锁'),
 ('near_domain','北京的租房补贴在哪儿申请'),
 ('near_domain','家里宽带能不能换成联通的'),
 ('near_domain','家里WiFi连不上了，路由器一直亮红灯'),
 ('near_domain','推荐朋友来租你们的房子有没有返现'),
 ('near_domain','小区里有没有健身房能用'),
 ('near_domain','空调开了半天一点都不凉'),
 ('near_domain','洗衣机不脱水，一甩干就咣咣响'),
 ('near_domain','冰箱冷藏室不制冷了，菜都放坏了'),
 ('near_domain','窗户关不严，晚上呼呼漏风'),
 ('near_domain','你们有没有租客活动，比如周末聚会什么的'),
 ('near_domain','户口能迁到这个地址吗'),
 ('near_domain','能不能只短租一个月'),
 ('near_domain','网上看的房子照片和实物差太多了'),
 ('near_domain','有线电视没信号了'),
 ('near_domain','卧室灯泡坏了，是我自己换还是你们来换'),
 ('near_domain','马桶水箱一直哗哗流水停不下来'),
 ('near_domain','窗户玻璃裂了一道缝'),
 ('near_domain','屋里有吹风机和熨斗吗'),
 ('near_domain','阳台能自己装个升降晾衣架吗'),
 ('near_domain','物业费是我交还是你们交'),
 ('near_domain','孩子上学能用租房合同办入学吗'),
 ('near_domain','退租的时候屋里的沙发能折价卖给我吗'),
 ('near_domain','过年门口能贴对联挂福字吗'),
 ('near_domain','应届毕业生租房有优惠吗'),
 ('near_domain','卧室想加个书桌，你们能给配吗'),
 ('near_domain','微波炉坏了能给换个新的吗'),
]
